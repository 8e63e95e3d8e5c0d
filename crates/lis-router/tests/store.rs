//! The durable queue store on a real redb file: per-output cursors, deletion once every
//! output has delivered, persistence across reopen, group commit across appenders.

use lis_router::store::QueueStore;

fn queues() -> Vec<(String, Vec<String>)> {
    vec![("q".into(), vec!["a".into(), "b".into()])]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_deletion_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = QueueStore::open(dir.path(), &queues()).unwrap();
        let appender = store.appender("q").unwrap();
        for i in 0..10u8 {
            assert_eq!(appender.append(vec![i].into()).await.unwrap(), u64::from(i));
        }
        // Output a delivered 6, output b 3: messages 0..3 can go, 3..10 must stay.
        store
            .advance("q", "a", 6)
            .await
            .unwrap()
            .await
            .unwrap()
            .unwrap();
        store
            .advance("q", "b", 3)
            .await
            .unwrap()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(store.read("q", 0, 100).unwrap().first().unwrap().seq, 3);
        drop(appender);
        store.close();
    }
    let store = QueueStore::open(dir.path(), &queues()).unwrap();
    assert_eq!(store.cursor("q", "a").unwrap(), 6);
    assert_eq!(store.cursor("q", "b").unwrap(), 3);
    let left = store.read("q", 3, 100).unwrap();
    assert_eq!(
        left.iter().map(|m| m.payload[0]).collect::<Vec<_>>(),
        [3, 4, 5, 6, 7, 8, 9]
    );
    // New messages continue the sequence.
    assert_eq!(
        store
            .appender("q")
            .unwrap()
            .append("x".into())
            .await
            .unwrap(),
        10
    );
    store.close();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appenders_keep_their_order_and_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = QueueStore::open(dir.path(), &queues()).unwrap();
    let tasks: Vec<_> = (0..8u8)
        .map(|sender| {
            let appender = store.appender("q").unwrap();
            tokio::spawn(async move {
                // Pipelined: submit all, then wait for the receipts.
                let mut receipts = Vec::new();
                for i in 0..50u8 {
                    receipts.push(appender.submit(vec![sender, i].into()).await.unwrap());
                }
                let mut last = None;
                for receipt in receipts {
                    let seq = receipt.await.unwrap().unwrap();
                    assert!(last.is_none_or(|l| seq > l));
                    last = Some(seq);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let all = store.read("q", 0, 1000).unwrap();
    assert_eq!(all.len(), 400);
    for sender in 0..8u8 {
        let order: Vec<u8> = all
            .iter()
            .filter(|m| m.payload[0] == sender)
            .map(|m| m.payload[1])
            .collect();
        assert_eq!(order, (0..50).collect::<Vec<u8>>());
    }
    // A second store on the same directory is refused while the first is open.
    assert!(QueueStore::open(dir.path(), &queues()).is_err());
    store.close();
}

/// A group handed over with `submit_all` is stored as one unit: its messages get
/// consecutive sequence numbers in order, however busy other appenders are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitted_group_is_never_split_or_interleaved() {
    let dir = tempfile::tempdir().unwrap();
    let store = QueueStore::open(dir.path(), &queues()).unwrap();
    let singles: Vec<_> = (0..4u8)
        .map(|sender| {
            let appender = store.appender("q").unwrap();
            tokio::spawn(async move {
                for i in 0..100u8 {
                    appender.append(vec![sender, i].into()).await.unwrap();
                }
            })
        })
        .collect();
    let appender = store.appender("q").unwrap();
    let mut firsts = Vec::new();
    for group in 0..20u8 {
        let payloads = (0..10u8).map(|i| vec![100 + group, i].into()).collect();
        let receipt = appender.submit_all(payloads).await.unwrap();
        firsts.push((group, receipt.await.unwrap().unwrap()));
        tokio::task::yield_now().await;
    }
    for task in singles {
        task.await.unwrap();
    }
    let all = store.read("q", 0, 1000).unwrap();
    assert_eq!(all.len(), 400 + 200);
    for (group, first) in firsts {
        let stored: Vec<&[u8]> = all
            .iter()
            .skip_while(|m| m.seq != first)
            .take(10)
            .map(|m| m.payload.as_slice())
            .collect();
        let expected: Vec<Vec<u8>> = (0..10u8).map(|i| vec![100 + group, i]).collect();
        assert_eq!(stored, expected, "group {group} from message {first}");
    }
    // An empty group stores nothing and answers with the next number.
    let next = all.last().unwrap().seq + 1;
    let empty = appender.submit_all(Vec::new()).await.unwrap();
    assert_eq!(empty.await.unwrap().unwrap(), next);
    assert_eq!(store.read("q", next, 10).unwrap(), []);
    drop(appender);
    store.close();
}

#[test]
fn unknown_queue_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = QueueStore::open(dir.path(), &queues()).unwrap();
    assert!(store.appender("nope").is_err());
    assert!(store.cursor("q", "nope").is_err());
}

/// Once every output has delivered everything, the queue's table is empty. Sequence numbers
/// must still go on from the outputs' cursors: starting again at 0 would put the cursors
/// past the next messages, and after a restart before their delivery those (acknowledged)
/// messages would be skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_after_a_drained_queue_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = QueueStore::open(dir.path(), &queues()).unwrap();
        let appender = store.appender("q").unwrap();
        for i in 0..5u8 {
            appender.append(vec![i].into()).await.unwrap();
        }
        for output in ["a", "b"] {
            let receipt = store.advance("q", output, 5).await.unwrap();
            receipt.await.unwrap().unwrap();
        }
        assert!(store.read("q", 0, 100).unwrap().is_empty());
        drop(appender);
        store.close();
    }
    {
        // Restarted with nothing stored: three messages are acknowledged, then the router
        // stops before any output delivers them.
        let store = QueueStore::open(dir.path(), &queues()).unwrap();
        let appender = store.appender("q").unwrap();
        for i in 0..3u8 {
            assert_eq!(
                appender.append(vec![10 + i].into()).await.unwrap(),
                5 + u64::from(i)
            );
        }
        drop(appender);
        store.close();
    }
    let store = QueueStore::open(dir.path(), &queues()).unwrap();
    for output in ["a", "b"] {
        let cursor = store.cursor("q", output).unwrap();
        let pending: Vec<u8> = store
            .read("q", cursor, 100)
            .unwrap()
            .iter()
            .map(|m| m.payload[0])
            .collect();
        assert_eq!(pending, [10, 11, 12], "output {output} at cursor {cursor}");
    }
    store.close();
}

/// Outputs read a bounded number of bytes at a time; a message larger than the bound is
/// still read, alone, so it cannot block its queue.
#[tokio::test]
async fn reads_stop_at_the_byte_budget_but_always_take_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let store = QueueStore::open(dir.path(), &queues()).unwrap();
    let appender = store.appender("q").unwrap();
    for size in [400, 400, 400, 2000, 10] {
        appender.append(vec![b'x'; size].into()).await.unwrap();
    }
    let sizes = |from, budget| -> Vec<usize> {
        store
            .read_bounded("q", from, 100, budget)
            .unwrap()
            .iter()
            .map(|m| m.payload.len())
            .collect()
    };
    assert_eq!(sizes(0, 1000), [400, 400]);
    assert_eq!(sizes(0, 1200), [400, 400, 400]);
    assert_eq!(sizes(3, 1000), [2000]);
    assert_eq!(sizes(3, 5000), [2000, 10]);
    assert_eq!(sizes(0, usize::MAX).len(), 5);
    drop(appender);
    store.close();
}

/// A store file whose queue holds the last sequence number there is (`u64::MAX`: written by
/// hand, or damaged) panicked the router at start ("attempt to add with overflow" for the
/// next number, or `clamp` with min > max once wrapped); opening it is now an error naming
/// the store file and the queue.
#[test]
fn a_store_at_the_last_sequence_number_is_an_error_not_a_panic() {
    use redb::{Database, TableDefinition};
    for with_cursor in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = Database::create(dir.path().join(lis_router::store::STORE_FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let queue: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("queue:q");
                txn.open_table(queue)
                    .unwrap()
                    .insert(u64::MAX, b"x".as_slice())
                    .unwrap();
                if with_cursor {
                    let cursors: TableDefinition<'_, &str, u64> = TableDefinition::new("cursors");
                    txn.open_table(cursors)
                        .unwrap()
                        .insert("q\u{1f}a", 5)
                        .unwrap();
                }
            }
            txn.commit().unwrap();
        }
        let error =
            QueueStore::open(dir.path(), &queues()).expect_err("a full sequence is refused");
        let text = error.to_string();
        assert!(
            text.contains("router.redb") && text.contains("`q`"),
            "{text}"
        );
    }
}
