#!/bin/sh
# Entry point of the simulator image. Compose files written for the reference image start it
# as `python -u server.py ARGS` (its CMD); those words are dropped and the simulator gets
# ARGS, so such files work unchanged. `simulator ARGS` and plain `ARGS` work too.
set -eu
case "${1:-}" in
python | python3 | */python | */python3)
    shift
    while [ $# -gt 0 ]; do
        case "$1" in
        -u | -B | -O) shift ;;
        *) break ;;
        esac
    done
    case "${1:-}" in
    server.py | */server.py) shift ;;
    *)
        echo "docker-entrypoint: this image runs the simulator, not Python: give" \
            "'python -u server.py ARGS', 'simulator ARGS' or just ARGS" >&2
        exit 2
        ;;
    esac
    ;;
simulator | */simulator) shift ;;
esac
exec simulator "$@"
