//! Conformance suite of the `Table` port.
//!
//! Every case is written once, as `async fn case_x(table: Arc<dyn Table>)`,
//! and [`conformance_cases!`] runs it on each adapter: in `sqlite` against a fresh
//! database file and in `dynamodb` against a fresh table on the DynamoDB
//! endpoint in `QUPER_TEST_DYNAMODB_ENDPOINT` (moto_server, started by
//! `infra/scripts/test.sh`), and once more in `dynamodb_metered` with the
//! adapter's capacity meter on. The DynamoDB side fails, never skips, when that
//! variable is unset: a silently skipped adapter would hide every difference
//! this suite exists to catch.
//!
//! `sqlite_acknowledged_writes_survive_kill_9` checks the embedded store's
//! durability claim with a child process killed mid-write.

use futures::future::join_all;
use quper_core::ports::table::{
    COUNTER_VALUE, MAX_BATCH_GET_KEYS, MAX_TRANSACTION_GROUPS, MAX_TRANSACTION_ITEMS, Update,
};
use quper_core::ports::{Condition, Index, Item, Key, Query, SortKey, StoreError, Table, WriteOp};
use quper_store_local::SqliteTable;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Runs each listed case against both adapters.
macro_rules! conformance_cases {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (table, _dir) = super::sqlite_table();
                    super::$case(table).await;
                }
            )+
        }

        /// SQLite answering every `get` from memory the writer keeps true.
        mod sqlite_remembering {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (table, _dir) = super::remembering_sqlite_table();
                    super::$case(table).await;
                }
            )+
        }

        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let table = super::dynamodb_table().await;
                    super::$case(table).await;
                }
            )+
        }

        mod dynamodb_metered {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let table = super::metered_dynamodb_table().await;
                    super::$case(table).await;
                }
            )+
        }
    };
}

conformance_cases!(
    case_get_missing_and_present,
    case_put_not_exists_twice,
    case_put_exists,
    case_put_version_equals,
    case_delete_with_conditions,
    case_invalid_items,
    case_query_sort_conditions,
    case_query_paging,
    case_query_gsi,
    case_query_gsi_paging_with_ties,
    case_increment,
    case_increment_concurrent,
    case_increment_with_ttl,
    case_transact_all_or_nothing,
    case_transact_limits,
    case_transact_increment,
    case_ttl_expiry,
    case_ttl_expiry_with_paging,
    case_concurrent_not_exists,
    case_bad_cursor,
    case_ping,
    case_update_set_remove_add,
    case_update_upsert,
    case_update_exists_on_missing,
    case_update_version_equals,
    case_update_moves_item_in_indexes,
    case_update_expired_item_starts_fresh,
    case_update_invalid,
    case_update_in_transaction,
    case_update_concurrent_add,
    case_scan_prefix,
    case_scan_prefix_deleting_while_scanning,
    case_scan_prefix_invalid,
    case_get_many_order_absent_expired,
    case_get_many_refusals,
    case_transact_many_per_group_results,
    case_transact_many_puts_and_conditional_groups,
    case_transact_many_shared_counter,
);

// ---------------------------------------------------------------------------
// Adapters under test

/// A table on a fresh SQLite file; the directory lives as long as the guard.
fn sqlite_table() -> (Arc<dyn Table>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let table = SqliteTable::open(&dir.path().join("table.db")).expect("open SQLite table");
    (Arc::new(table), dir)
}

/// The same, with every item answered from memory once read
/// (`Remember::Everything`).
fn remembering_sqlite_table() -> (Arc<dyn Table>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let options = quper_store_local::SqliteOptions {
        remember: quper_store_local::Remember::Everything,
        ..quper_store_local::SqliteOptions::from_env().expect("options")
    };
    let table = SqliteTable::open_with(&dir.path().join("table.db"), options).expect("open SQLite table");
    (Arc::new(table), dir)
}

/// A freshly created table on the test DynamoDB endpoint.
async fn dynamodb_table() -> Arc<dyn Table> {
    crate::support::dynamodb_table("conformance").await
}

/// The same with a capacity meter: asking for and counting consumed
/// capacity must not change what any operation does.
async fn metered_dynamodb_table() -> Arc<dyn Table> {
    let meter = Arc::new(quper_store_aws::capacity::CapacityMeter::new());
    let table = crate::support::fresh_dynamodb_table("metered")
        .await
        .with_capacity_meter(meter);
    Arc::new(table)
}

// ---------------------------------------------------------------------------
// Helpers

fn item(value: Value) -> Item {
    match value {
        Value::Object(map) => map,
        other => panic!("not a JSON object: {other}"),
    }
}

fn now() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970");
    i64::try_from(since_epoch.as_secs()).expect("epoch seconds fit i64")
}

fn sort_keys(items: &[Item]) -> Vec<String> {
    items
        .iter()
        .map(|item| item["SK"].as_str().expect("string SK").to_owned())
        .collect()
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| (*value).to_owned()).collect()
}

/// Follows the cursor to the end; returns every item and each page's size.
async fn all_pages(table: &Arc<dyn Table>, query: Query) -> (Vec<Item>, Vec<usize>) {
    let mut items = Vec::new();
    let mut page_sizes = Vec::new();
    let mut cursor = None;
    loop {
        let page = table.query(query.clone().after(cursor)).await.expect("query page");
        page_sizes.push(page.items.len());
        items.extend(page.items);
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return (items, page_sizes),
        }
        assert!(page_sizes.len() < 1000, "paging does not terminate");
    }
}

async fn query_sort_keys(table: &Arc<dyn Table>, query: Query) -> Vec<String> {
    sort_keys(&all_pages(table, query).await.0)
}

async fn counter_value(table: &Arc<dyn Table>, key: &Key) -> Option<i64> {
    let item = table.get(key).await.expect("get counter")?;
    Some(item[COUNTER_VALUE].as_i64().expect("integer counter value"))
}

// ---------------------------------------------------------------------------
// Cases

async fn case_get_missing_and_present(table: Arc<dyn Table>) {
    let key = Key::new("user#1", "profile");
    assert_eq!(table.get(&key).await, Ok(None));

    let stored = item(json!({
        "PK": "user#1", "SK": "profile",
        "name": "Ada", "age": 36, "score": 1.5, "big": u64::MAX, "negative": -7,
        "admin": true, "nothing": null, "empty": "",
        "tags": ["a", 2, false], "address": {"city": "London", "lines": ["1 Road"]}
    }));
    table.put(stored.clone(), Condition::None).await.expect("put");
    assert_eq!(table.get(&key).await, Ok(Some(stored)));
    assert_eq!(table.get(&Key::new("user#1", "other")).await, Ok(None));
    assert_eq!(table.get(&Key::new("user#2", "profile")).await, Ok(None));

    let replacement = item(json!({"PK": "user#1", "SK": "profile", "name": "Grace"}));
    table.put(replacement.clone(), Condition::None).await.expect("replace");
    assert_eq!(
        table.get(&key).await,
        Ok(Some(replacement)),
        "put replaces the whole item"
    );
}

async fn case_put_not_exists_twice(table: Arc<dyn Table>) {
    let key = Key::new("tenant#1", "meta");
    let first = item(json!({"PK": "tenant#1", "SK": "meta", "n": 1}));
    table.put(first.clone(), Condition::NotExists).await.expect("first put");
    let second = item(json!({"PK": "tenant#1", "SK": "meta", "n": 2}));
    assert_eq!(
        table.put(second, Condition::NotExists).await,
        Err(StoreError::ConditionFailed { key: key.clone() })
    );
    assert_eq!(table.get(&key).await, Ok(Some(first)), "the failed put wrote nothing");
}

async fn case_put_exists(table: Arc<dyn Table>) {
    let key = Key::new("p", "s");
    let value = item(json!({"PK": "p", "SK": "s", "n": 1}));
    assert_eq!(
        table.put(value.clone(), Condition::Exists).await,
        Err(StoreError::ConditionFailed { key: key.clone() })
    );
    assert_eq!(table.get(&key).await, Ok(None));
    table.put(value, Condition::None).await.expect("create");
    let updated = item(json!({"PK": "p", "SK": "s", "n": 2}));
    table
        .put(updated.clone(), Condition::Exists)
        .await
        .expect("put over an existing item");
    assert_eq!(table.get(&key).await, Ok(Some(updated)));
}

async fn case_put_version_equals(table: Arc<dyn Table>) {
    let key = Key::new("doc", "1");
    let v1 = item(json!({"PK": "doc", "SK": "1", "version": 1, "body": "one"}));
    assert_eq!(
        table.put(v1.clone(), Condition::VersionEquals(0)).await,
        Err(StoreError::ConditionFailed { key: key.clone() }),
        "VersionEquals needs an existing item"
    );
    table.put(v1.clone(), Condition::NotExists).await.expect("create v1");

    let v2 = item(json!({"PK": "doc", "SK": "1", "version": 2, "body": "two"}));
    assert_eq!(
        table.put(v2.clone(), Condition::VersionEquals(2)).await,
        Err(StoreError::ConditionFailed { key: key.clone() })
    );
    assert_eq!(table.get(&key).await, Ok(Some(v1)));
    table
        .put(v2.clone(), Condition::VersionEquals(1))
        .await
        .expect("matching version");
    assert_eq!(table.get(&key).await, Ok(Some(v2)));

    // Only a numeric `version` counts.
    let stringly = item(json!({"PK": "doc", "SK": "2", "version": "3"}));
    table.put(stringly.clone(), Condition::None).await.expect("put");
    assert!(
        table
            .put(stringly, Condition::VersionEquals(3))
            .await
            .is_err_and(|error| error.is_condition_failed())
    );
}

async fn case_delete_with_conditions(table: Arc<dyn Table>) {
    let key = Key::new("d", "1");
    table
        .delete(&key, Condition::None)
        .await
        .expect("deleting an absent item succeeds");
    assert_eq!(
        table.delete(&key, Condition::Exists).await,
        Err(StoreError::ConditionFailed { key: key.clone() })
    );
    assert_eq!(
        table.delete(&key, Condition::VersionEquals(1)).await,
        Err(StoreError::ConditionFailed { key: key.clone() })
    );

    let stored = item(json!({"PK": "d", "SK": "1", "version": 4}));
    table.put(stored.clone(), Condition::None).await.expect("put");
    assert_eq!(
        table.delete(&key, Condition::NotExists).await,
        Err(StoreError::ConditionFailed { key: key.clone() })
    );
    assert_eq!(
        table.delete(&key, Condition::VersionEquals(3)).await,
        Err(StoreError::ConditionFailed { key: key.clone() })
    );
    assert_eq!(
        table.get(&key).await,
        Ok(Some(stored.clone())),
        "failed deletes leave the item"
    );
    table
        .delete(&key, Condition::VersionEquals(4))
        .await
        .expect("delete at the right version");
    assert_eq!(table.get(&key).await, Ok(None));

    table.put(stored, Condition::None).await.expect("put again");
    table
        .delete(&key, Condition::Exists)
        .await
        .expect("delete an existing item");
    assert_eq!(table.get(&key).await, Ok(None));
}

async fn case_invalid_items(table: Arc<dyn Table>) {
    let invalid = [
        json!({"PK": "p"}),
        json!({"SK": "s"}),
        json!({"PK": 1, "SK": "s"}),
        json!({"PK": "p", "SK": ""}),
        json!({"PK": "p", "SK": "s", "GSI1PK": 5, "GSI1SK": "x"}),
    ];
    for value in invalid {
        let result = table.put(item(value.clone()), Condition::None).await;
        assert!(matches!(result, Err(StoreError::Invalid(_))), "{value} gave {result:?}");
    }
    let no_sk = WriteOp::put(item(json!({"PK": "p"})), Condition::None);
    assert!(matches!(table.transact(vec![no_sk]).await, Err(StoreError::Invalid(_))));

    let empty = Key::new("p", "");
    assert!(matches!(table.get(&empty).await, Err(StoreError::Invalid(_))));
    assert!(matches!(
        table.delete(&empty, Condition::None).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        table.increment(&empty, 1, None).await,
        Err(StoreError::Invalid(_))
    ));
    let check = WriteOp::Check {
        key: empty,
        condition: Condition::None,
    };
    assert!(matches!(table.transact(vec![check]).await, Err(StoreError::Invalid(_))));
}

/// A partition with sort keys in three groups, plus a neighbour partition
/// whose items must never show up.
async fn seed_sort_partition(table: &Arc<dyn Table>) {
    let mut puts = Vec::new();
    for sk in [
        "a#01", "a#02", "a#03", "a#04", "a#05", "b#01", "b#02", "b#03", "b#04", "b#05", "c#01",
    ] {
        puts.push(table.put(item(json!({"PK": "q", "SK": sk})), Condition::None));
    }
    for sk in ["a#00", "a#06", "b#00"] {
        puts.push(table.put(item(json!({"PK": "q2", "SK": sk})), Condition::None));
    }
    for result in join_all(puts).await {
        result.expect("seed put");
    }
}

async fn case_query_sort_conditions(table: Arc<dyn Table>) {
    seed_sort_partition(&table).await;
    let query = || Query::partition("q");

    let all = query_sort_keys(&table, query()).await;
    assert_eq!(
        all,
        strings(&[
            "a#01", "a#02", "a#03", "a#04", "a#05", "b#01", "b#02", "b#03", "b#04", "b#05", "c#01"
        ])
    );
    let mut reversed = all.clone();
    reversed.reverse();
    assert_eq!(query_sort_keys(&table, query().backwards()).await, reversed);

    assert_eq!(
        query_sort_keys(&table, query().prefix("a#")).await,
        strings(&["a#01", "a#02", "a#03", "a#04", "a#05"])
    );
    assert_eq!(
        query_sort_keys(&table, query().prefix("b#").backwards()).await,
        strings(&["b#05", "b#04", "b#03", "b#02", "b#01"])
    );
    assert_eq!(query_sort_keys(&table, query().prefix("b#0")).await.len(), 5);
    assert_eq!(query_sort_keys(&table, query().prefix("z")).await, Vec::<String>::new());
    assert_eq!(
        query_sort_keys(&table, query().prefix("")).await,
        all,
        "an empty prefix matches everything"
    );

    let between = SortKey::Between {
        from: "a#03".into(),
        to: "b#02".into(),
    };
    assert_eq!(
        query_sort_keys(&table, query().sort(between.clone())).await,
        strings(&["a#03", "a#04", "a#05", "b#01", "b#02"])
    );
    assert_eq!(
        query_sort_keys(&table, query().sort(between).backwards()).await,
        strings(&["b#02", "b#01", "a#05", "a#04", "a#03"])
    );
    let reversed_bounds = SortKey::Between {
        from: "b".into(),
        to: "a".into(),
    };
    assert_eq!(
        query_sort_keys(&table, query().sort(reversed_bounds)).await,
        Vec::<String>::new()
    );

    assert_eq!(
        query_sort_keys(&table, query().sort(SortKey::From("b#04".into()))).await,
        strings(&["b#04", "b#05", "c#01"])
    );
    assert_eq!(
        query_sort_keys(&table, query().sort(SortKey::From("b#04".into())).backwards()).await,
        strings(&["c#01", "b#05", "b#04"])
    );
    assert_eq!(
        query_sort_keys(&table, query().sort(SortKey::To("a#02".into()))).await,
        strings(&["a#01", "a#02"])
    );
    assert_eq!(
        query_sort_keys(&table, query().sort(SortKey::To("a#02".into())).backwards()).await,
        strings(&["a#02", "a#01"])
    );

    assert_eq!(
        query_sort_keys(&table, Query::partition("nobody")).await,
        Vec::<String>::new()
    );
    let empty = table.query(Query::partition("nobody")).await.expect("empty query");
    assert_eq!(empty.cursor, None);
}

async fn case_query_paging(table: Arc<dyn Table>) {
    let puts = (0..25).map(|n| {
        table.put(
            item(json!({"PK": "page", "SK": format!("item#{n:02}"), "n": n})),
            Condition::None,
        )
    });
    for result in join_all(puts).await {
        result.expect("seed put");
    }
    table
        .put(item(json!({"PK": "page", "SK": "other"})), Condition::None)
        .await
        .expect("put");
    let expected: Vec<String> = (0..25).map(|n| format!("item#{n:02}")).collect();

    let (items, pages) = all_pages(&table, Query::partition("page").prefix("item#").limit(7)).await;
    assert_eq!(sort_keys(&items), expected, "every item exactly once, in order");
    assert_eq!(pages, vec![7, 7, 7, 4]);

    let (items, pages) = all_pages(&table, Query::partition("page").prefix("item#").limit(7).backwards()).await;
    let mut backwards = expected.clone();
    backwards.reverse();
    assert_eq!(sort_keys(&items), backwards);
    assert_eq!(pages, vec![7, 7, 7, 4]);

    // A page that ends exactly at the last item has no cursor.
    let (items, pages) = all_pages(&table, Query::partition("page").prefix("item#").limit(5)).await;
    assert_eq!(sort_keys(&items), expected);
    assert_eq!(pages, vec![5, 5, 5, 5, 5]);
    let (_, pages) = all_pages(&table, Query::partition("page").limit(26)).await;
    assert_eq!(pages, vec![26]);

    let (items, pages) = all_pages(&table, Query::partition("page").prefix("item#").limit(1)).await;
    assert_eq!(sort_keys(&items), expected);
    assert_eq!(pages.len(), 25);

    let between = SortKey::Between {
        from: "item#05".into(),
        to: "item#14".into(),
    };
    let (items, pages) = all_pages(&table, Query::partition("page").sort(between).limit(4).backwards()).await;
    let expected_between: Vec<String> = (5..15).rev().map(|n| format!("item#{n:02}")).collect();
    assert_eq!(sort_keys(&items), expected_between);
    assert_eq!(pages, vec![4, 4, 2]);

    let unlimited = table
        .query(Query::partition("page"))
        .await
        .expect("query without a limit");
    assert_eq!(unlimited.items.len(), 26);
    assert_eq!(unlimited.cursor, None);
}

async fn case_query_gsi(table: Arc<dyn Table>) {
    let items = [
        json!({"PK": "user#1", "SK": "profile", "GSI1PK": "team#a", "GSI1SK": "name#carol", "GSI2PK": "email", "GSI2SK": "c@x"}),
        json!({"PK": "user#2", "SK": "profile", "GSI1PK": "team#a", "GSI1SK": "name#alice"}),
        json!({"PK": "user#3", "SK": "profile", "GSI1PK": "team#a", "GSI1SK": "name#bob", "GSI2PK": "email", "GSI2SK": "b@x"}),
        json!({"PK": "user#4", "SK": "profile", "GSI1PK": "team#b", "GSI1SK": "name#dave"}),
        // Carries a GSI partition key but no sort key: in neither index.
        json!({"PK": "user#5", "SK": "profile", "GSI1PK": "team#a", "GSI2PK": "email"}),
        // No index attributes at all.
        json!({"PK": "user#6", "SK": "profile"}),
    ];
    for value in items {
        table.put(item(value), Condition::None).await.expect("put");
    }
    let pks = |items: &[Item]| -> Vec<String> {
        items
            .iter()
            .map(|item| item["PK"].as_str().expect("string PK").to_owned())
            .collect()
    };

    let (team_a, _) = all_pages(&table, Query::index(Index::Gsi1, "team#a")).await;
    assert_eq!(
        pks(&team_a),
        strings(&["user#2", "user#3", "user#1"]),
        "ordered by GSI1SK"
    );
    assert_eq!(team_a[0]["SK"], json!("profile"), "index queries return whole items");
    let (team_a_backwards, _) = all_pages(&table, Query::index(Index::Gsi1, "team#a").backwards()).await;
    assert_eq!(pks(&team_a_backwards), strings(&["user#1", "user#3", "user#2"]));
    let (prefixed, _) = all_pages(&table, Query::index(Index::Gsi1, "team#a").prefix("name#b")).await;
    assert_eq!(pks(&prefixed), strings(&["user#3"]));
    let (paged, pages) = all_pages(&table, Query::index(Index::Gsi1, "team#a").limit(2)).await;
    assert_eq!(pks(&paged), strings(&["user#2", "user#3", "user#1"]));
    assert_eq!(pages, vec![2, 1]);

    let (emails, _) = all_pages(&table, Query::index(Index::Gsi2, "email")).await;
    assert_eq!(pks(&emails), strings(&["user#3", "user#1"]));
    let (base_named, _) = all_pages(&table, Query::index(Index::Gsi1, "user#6")).await;
    assert!(base_named.is_empty(), "a GSI query does not read base-table partitions");
    let (missing, _) = all_pages(&table, Query::index(Index::Gsi2, "team#a")).await;
    assert!(missing.is_empty());
}

async fn case_query_gsi_paging_with_ties(table: Arc<dyn Table>) {
    // Eleven items share three GSI2 sort keys; paging must still return each
    // exactly once, in non-decreasing index sort key order.
    for n in 0..11 {
        let value =
            json!({"PK": format!("alert#{n:02}"), "SK": "a", "GSI2PK": "open", "GSI2SK": format!("p{}", n % 3)});
        table.put(item(value), Condition::None).await.expect("put");
    }
    for forward in [true, false] {
        let mut query = Query::index(Index::Gsi2, "open").limit(3);
        query.forward = forward;
        let (items, _) = all_pages(&table, query).await;
        let pks: BTreeSet<String> = items
            .iter()
            .map(|item| item["PK"].as_str().expect("PK").to_owned())
            .collect();
        assert_eq!(items.len(), 11, "no duplicates (forward: {forward})");
        assert_eq!(pks.len(), 11, "no item missed (forward: {forward})");
        let index_sort_keys: Vec<&str> = items
            .iter()
            .map(|item| item["GSI2SK"].as_str().expect("GSI2SK"))
            .collect();
        let mut sorted = index_sort_keys.clone();
        sorted.sort_unstable();
        if !forward {
            sorted.reverse();
        }
        assert_eq!(index_sort_keys, sorted);
    }
}

async fn case_increment(table: Arc<dyn Table>) {
    let key = Key::new("counter", "hits");
    assert_eq!(table.increment(&key, 5, None).await, Ok(5), "a new counter starts at 0");
    assert_eq!(table.increment(&key, 3, None).await, Ok(8));
    assert_eq!(table.increment(&key, -10, None).await, Ok(-2));
    assert_eq!(counter_value(&table, &key).await, Some(-2));
    let stored = table.get(&key).await.expect("get").expect("counter item");
    assert_eq!(stored["PK"], json!("counter"));
    assert!(stored.get("ttl").is_none());

    // Incrementing keeps the item's other attributes.
    let tagged = Key::new("counter", "tagged");
    table
        .put(
            item(json!({"PK": "counter", "SK": "tagged", "label": "x", "value": 10})),
            Condition::None,
        )
        .await
        .expect("put");
    assert_eq!(table.increment(&tagged, 1, None).await, Ok(11));
    assert_eq!(
        table.get(&tagged).await.expect("get").expect("item")["label"],
        json!("x")
    );
}

async fn case_increment_concurrent(table: Arc<dyn Table>) {
    let key = Key::new("counter", "concurrent");
    let tasks = (0..20).map(|_| {
        let table = Arc::clone(&table);
        let key = key.clone();
        tokio::spawn(async move { table.increment(&key, 1, None).await })
    });
    let mut values: Vec<i64> = join_all(tasks)
        .await
        .into_iter()
        .map(|joined| joined.expect("task").expect("increment"))
        .collect();
    values.sort_unstable();
    assert_eq!(
        values,
        (1..=20).collect::<Vec<i64>>(),
        "each increment saw a distinct value"
    );
    assert_eq!(counter_value(&table, &key).await, Some(20));
}

async fn case_increment_with_ttl(table: Arc<dyn Table>) {
    let key = Key::new("rate", "window#1");
    let expires = now() + 3600;
    assert_eq!(table.increment(&key, 1, Some(expires)).await, Ok(1));
    assert_eq!(table.increment(&key, 1, Some(expires + 60)).await, Ok(2));
    let stored = table.get(&key).await.expect("get").expect("counter");
    assert_eq!(stored["ttl"], json!(expires + 60), "the latest ttl is stored");
    assert_eq!(table.increment(&key, 1, None).await, Ok(3));
    assert_eq!(
        table.get(&key).await.expect("get").expect("counter")["ttl"],
        json!(expires + 60),
        "no ttl keeps the old one"
    );

    // An expired counter starts again from 0, as a fresh item.
    let expired_key = Key::new("rate", "window#0");
    let old = item(json!({"PK": "rate", "SK": "window#0", "value": 41, "ttl": now() - 10, "stale": true}));
    table.put(old, Condition::None).await.expect("put expired counter");
    assert_eq!(table.increment(&expired_key, 1, Some(expires)).await, Ok(1));
    let restarted = table
        .get(&expired_key)
        .await
        .expect("get")
        .expect("restarted counter is live");
    assert_eq!(restarted["ttl"], json!(expires));
    assert!(
        restarted.get("stale").is_none(),
        "the expired item's attributes are gone"
    );
    assert_eq!(table.increment(&expired_key, 2, Some(expires)).await, Ok(3));

    // Restarting without a ttl leaves no expired ttl behind.
    let no_ttl_key = Key::new("rate", "window#x");
    table
        .put(
            item(json!({"PK": "rate", "SK": "window#x", "value": 9, "ttl": now() - 10})),
            Condition::None,
        )
        .await
        .expect("put");
    assert_eq!(table.increment(&no_ttl_key, 4, None).await, Ok(4));
    assert_eq!(counter_value(&table, &no_ttl_key).await, Some(4));
}

async fn case_transact_all_or_nothing(table: Arc<dyn Table>) {
    table
        .put(item(json!({"PK": "tx", "SK": "c", "version": 1})), Condition::None)
        .await
        .expect("put c");
    table
        .put(item(json!({"PK": "tx", "SK": "e", "version": 1})), Condition::None)
        .await
        .expect("put e");
    let before = all_pages(&table, Query::partition("tx")).await.0;

    let ops = vec![
        WriteOp::put(item(json!({"PK": "tx", "SK": "a"})), Condition::NotExists),
        WriteOp::put(item(json!({"PK": "tx", "SK": "b"})), Condition::None),
        WriteOp::delete(Key::new("tx", "c"), Condition::Exists),
        WriteOp::Check {
            key: Key::new("tx", "d"),
            condition: Condition::Exists,
        },
        WriteOp::put(
            item(json!({"PK": "tx", "SK": "e", "version": 2})),
            Condition::VersionEquals(1),
        ),
    ];
    assert_eq!(
        table.transact(ops.clone()).await,
        Err(StoreError::TransactionConditionFailed {
            index: 3,
            key: Key::new("tx", "d")
        })
    );
    assert_eq!(
        all_pages(&table, Query::partition("tx")).await.0,
        before,
        "nothing was written"
    );

    // The same transaction goes through once its check holds.
    table
        .put(item(json!({"PK": "tx", "SK": "d"})), Condition::None)
        .await
        .expect("put d");
    table.transact(ops).await.expect("transaction");
    assert_eq!(
        query_sort_keys(&table, Query::partition("tx")).await,
        strings(&["a", "b", "d", "e"])
    );
    assert_eq!(
        table.get(&Key::new("tx", "e")).await.expect("get").expect("e")["version"],
        json!(2)
    );

    // A failing first operation is reported as index 0.
    let ops = vec![
        WriteOp::put(item(json!({"PK": "tx", "SK": "a"})), Condition::NotExists),
        WriteOp::put(item(json!({"PK": "tx", "SK": "f"})), Condition::None),
    ];
    assert_eq!(
        table.transact(ops).await,
        Err(StoreError::TransactionConditionFailed {
            index: 0,
            key: Key::new("tx", "a")
        })
    );
    assert_eq!(table.get(&Key::new("tx", "f")).await, Ok(None));

    // A check with no condition always holds and writes nothing.
    let ops = vec![
        WriteOp::Check {
            key: Key::new("tx", "nobody"),
            condition: Condition::None,
        },
        WriteOp::put(item(json!({"PK": "tx", "SK": "g"})), Condition::None),
    ];
    table.transact(ops).await.expect("unconditional check");
    assert_eq!(table.get(&Key::new("tx", "nobody")).await, Ok(None));
}

async fn case_transact_limits(table: Arc<dyn Table>) {
    let puts = |count: usize| -> Vec<WriteOp> {
        (0..count)
            .map(|n| {
                WriteOp::put(
                    item(json!({"PK": "bulk", "SK": format!("{n:03}")})),
                    Condition::NotExists,
                )
            })
            .collect()
    };
    assert!(matches!(
        table.transact(puts(MAX_TRANSACTION_ITEMS + 1)).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        table.query(Query::partition("bulk")).await.expect("query").items.len(),
        0
    );
    table
        .transact(puts(MAX_TRANSACTION_ITEMS))
        .await
        .expect("a transaction of the maximum size");
    let (items, _) = all_pages(&table, Query::partition("bulk").limit(40)).await;
    assert_eq!(items.len(), MAX_TRANSACTION_ITEMS);

    assert!(matches!(table.transact(Vec::new()).await, Err(StoreError::Invalid(_))));
    let twice = vec![
        WriteOp::put(item(json!({"PK": "bulk", "SK": "x"})), Condition::None),
        WriteOp::delete(Key::new("bulk", "x"), Condition::None),
    ];
    assert!(matches!(table.transact(twice).await, Err(StoreError::Invalid(_))));
}

async fn case_transact_increment(table: Arc<dyn Table>) {
    let counter = Key::new("seq", "incidents");
    let ops = |sk: &str| {
        vec![
            WriteOp::Increment {
                key: counter.clone(),
                by: 2,
            },
            WriteOp::put(item(json!({"PK": "seq", "SK": sk})), Condition::NotExists),
        ]
    };
    table.transact(ops("1")).await.expect("first");
    assert_eq!(counter_value(&table, &counter).await, Some(2));
    table.transact(ops("2")).await.expect("second");
    assert_eq!(counter_value(&table, &counter).await, Some(4));
    assert_eq!(
        table.transact(ops("1")).await,
        Err(StoreError::TransactionConditionFailed {
            index: 1,
            key: Key::new("seq", "1")
        })
    );
    assert_eq!(
        counter_value(&table, &counter).await,
        Some(4),
        "the failed transaction did not count"
    );

    // An expired counter restarts inside a transaction too.
    let expired = Key::new("seq", "expired");
    table
        .put(
            item(json!({"PK": "seq", "SK": "expired", "value": 100, "ttl": now() - 5})),
            Condition::None,
        )
        .await
        .expect("put");
    table
        .transact(vec![
            WriteOp::put(item(json!({"PK": "seq", "SK": "3"})), Condition::NotExists),
            WriteOp::Increment {
                key: expired.clone(),
                by: 1,
            },
        ])
        .await
        .expect("increment an expired counter");
    assert_eq!(counter_value(&table, &expired).await, Some(1));
}

async fn case_ttl_expiry(table: Arc<dyn Table>) {
    let past = now() - 60;
    let future = now() + 3600;
    let expired_key = Key::new("ttl", "expired");
    let expired = item(json!({"PK": "ttl", "SK": "expired", "ttl": past, "version": 1,
                             "GSI1PK": "ttl-index", "GSI1SK": "expired"}));
    table
        .put(expired, Condition::None)
        .await
        .expect("write an already expired item");
    table
        .put(
            item(json!({"PK": "ttl", "SK": "live", "ttl": future, "GSI1PK": "ttl-index", "GSI1SK": "live"})),
            Condition::None,
        )
        .await
        .expect("put live");
    table
        .put(item(json!({"PK": "ttl", "SK": "forever"})), Condition::None)
        .await
        .expect("put forever");

    assert_eq!(table.get(&expired_key).await, Ok(None));
    assert_eq!(
        query_sort_keys(&table, Query::partition("ttl")).await,
        strings(&["forever", "live"])
    );
    let (indexed, _) = all_pages(&table, Query::index(Index::Gsi1, "ttl-index")).await;
    assert_eq!(sort_keys(&indexed), strings(&["live"]));

    for condition in [Condition::Exists, Condition::VersionEquals(1)] {
        let result = table
            .put(item(json!({"PK": "ttl", "SK": "expired"})), condition.clone())
            .await;
        assert_eq!(
            result,
            Err(StoreError::ConditionFailed {
                key: expired_key.clone()
            }),
            "{condition:?}"
        );
        let result = table.delete(&expired_key, condition.clone()).await;
        assert_eq!(
            result,
            Err(StoreError::ConditionFailed {
                key: expired_key.clone()
            }),
            "{condition:?}"
        );
    }
    let check = vec![WriteOp::Check {
        key: expired_key.clone(),
        condition: Condition::Exists,
    }];
    assert!(
        table
            .transact(check)
            .await
            .is_err_and(|error| error.is_condition_failed())
    );

    let reborn = item(json!({"PK": "ttl", "SK": "expired", "n": 2}));
    table
        .put(reborn.clone(), Condition::NotExists)
        .await
        .expect("NotExists treats an expired item as absent");
    assert_eq!(table.get(&expired_key).await, Ok(Some(reborn)));

    let live_key = Key::new("ttl", "live");
    let result = table
        .put(item(json!({"PK": "ttl", "SK": "live"})), Condition::NotExists)
        .await;
    assert_eq!(
        result,
        Err(StoreError::ConditionFailed { key: live_key }),
        "an unexpired ttl is live"
    );
}

async fn case_ttl_expiry_with_paging(table: Arc<dyn Table>) {
    // Every other item is expired; pages must still fill up to the limit.
    let past = now() - 60;
    for n in 0..20 {
        let mut value = json!({"PK": "sparse", "SK": format!("{n:02}")});
        if n % 2 == 1 {
            value["ttl"] = json!(past);
        }
        table.put(item(value), Condition::None).await.expect("put");
    }
    let live: Vec<String> = (0..20).step_by(2).map(|n| format!("{n:02}")).collect();
    let (items, pages) = all_pages(&table, Query::partition("sparse").limit(3)).await;
    assert_eq!(sort_keys(&items), live);
    assert_eq!(pages, vec![3, 3, 3, 1]);
    let (items, pages) = all_pages(&table, Query::partition("sparse").limit(10)).await;
    assert_eq!(sort_keys(&items), live);
    assert_eq!(
        pages,
        vec![10],
        "the last page has no cursor even though expired items follow"
    );
}

async fn case_concurrent_not_exists(table: Arc<dyn Table>) {
    let key = Key::new("lock", "incident#1");
    let tasks = (0..20).map(|writer| {
        let table = Arc::clone(&table);
        tokio::spawn(async move {
            let value = item(json!({"PK": "lock", "SK": "incident#1", "writer": writer}));
            (writer, table.put(value, Condition::NotExists).await)
        })
    });
    let results: Vec<(i32, Result<(), StoreError>)> = join_all(tasks)
        .await
        .into_iter()
        .map(|joined| joined.expect("task"))
        .collect();
    let winners: Vec<i32> = results
        .iter()
        .filter(|(_, result)| result.is_ok())
        .map(|(writer, _)| *writer)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one writer wins: {results:?}");
    for (_, result) in &results {
        if let Err(error) = result {
            assert_eq!(error, &StoreError::ConditionFailed { key: key.clone() });
        }
    }
    let stored = table.get(&key).await.expect("get").expect("the winner's item");
    assert_eq!(stored["writer"], json!(winners[0]));
}

async fn case_bad_cursor(table: Arc<dyn Table>) {
    for n in 0..3 {
        table
            .put(
                item(json!({"PK": "cur", "SK": format!("{n}"), "GSI1PK": "g", "GSI1SK": format!("{n}")})),
                Condition::None,
            )
            .await
            .expect("put");
    }
    let page = table.query(Query::partition("cur").limit(1)).await.expect("first page");
    let cursor = page.cursor.expect("a cursor");
    let gsi_page = table
        .query(Query::index(Index::Gsi1, "g").limit(1))
        .await
        .expect("first index page");
    let gsi_cursor = gsi_page.cursor.expect("an index cursor");

    let bad_cursors = [
        "not a cursor!".to_owned(),
        "bm90IGpzb24".to_owned(), // base64url of "not json"
        "eyJQSyI6MX0".to_owned(), // base64url of {"PK":1}
        String::new(),
    ];
    for bad in bad_cursors {
        let result = table
            .query(Query::partition("cur").limit(1).after(Some(bad.clone())))
            .await;
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "cursor {bad:?} gave {result:?}"
        );
    }
    let misused = [
        Query::partition("other").after(Some(cursor.clone())),
        Query::index(Index::Gsi1, "g").after(Some(cursor.clone())),
        Query::partition("cur").after(Some(gsi_cursor.clone())),
        Query::index(Index::Gsi2, "g").after(Some(gsi_cursor)),
    ];
    for query in misused {
        let result = table.query(query.clone()).await;
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "{query:?} gave {result:?}"
        );
    }
    let result = table.query(Query::partition("cur").limit(0)).await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "limit 0 gave {result:?}");

    let rest = table
        .query(Query::partition("cur").after(Some(cursor)))
        .await
        .expect("valid cursor");
    assert_eq!(sort_keys(&rest.items), strings(&["1", "2"]));
}

async fn case_ping(table: Arc<dyn Table>) {
    table.ping().await.expect("ping");
}

async fn case_update_set_remove_add(table: Arc<dyn Table>) {
    let key = Key::new("upd", "1");
    table
        .put(
            item(
                json!({"PK": "upd", "SK": "1", "name": "Ada", "old": true, "count": 5, "score": 1.5,
                        "kind": 7, "keep": "x"}),
            ),
            Condition::None,
        )
        .await
        .expect("put");
    let update = Update::new(key.clone())
        .set("name", "Grace")
        .set("kind", "now a string")
        .set("address", json!({"city": "Paris", "lines": ["1 Rue"]}))
        .set("nothing", Value::Null)
        .set("with.dot", 1)
        .remove("old")
        .remove("ghost")
        .add("count", 3)
        .add("fresh", -2)
        .add("score", 1);
    let expected = item(json!({
        "PK": "upd", "SK": "1", "name": "Grace", "kind": "now a string",
        "address": {"city": "Paris", "lines": ["1 Rue"]}, "nothing": null, "with.dot": 1,
        "count": 8, "fresh": -2, "score": 2.5, "keep": "x"
    }));
    assert_eq!(
        table.update(update).await,
        Ok(expected.clone()),
        "the whole item after the update"
    );
    assert_eq!(table.get(&key).await, Ok(Some(expected.clone())));

    let after = table
        .update(Update::new(key.clone()).add("count", -10).remove("address"))
        .await
        .expect("second update");
    assert_eq!(after["count"], json!(-2));
    assert!(after.get("address").is_none());
    assert_eq!(after["keep"], json!("x"));
    assert_eq!(table.get(&key).await, Ok(Some(after)));
}

async fn case_update_upsert(table: Arc<dyn Table>) {
    let key = Key::new("upd", "new");
    let created = table
        .update(Update::new(key.clone()).set("name", "x").add("n", 4).remove("ghost"))
        .await;
    let expected = item(json!({"PK": "upd", "SK": "new", "name": "x", "n": 4}));
    assert_eq!(created, Ok(expected.clone()), "a missing item is created");
    assert_eq!(table.get(&key).await, Ok(Some(expected)));

    let once = Key::new("upd", "once");
    let made = table
        .update(Update::new(once.clone()).set("a", 1).when(Condition::NotExists))
        .await;
    assert_eq!(made, Ok(item(json!({"PK": "upd", "SK": "once", "a": 1}))));
    assert_eq!(
        table
            .update(Update::new(once.clone()).set("a", 2).when(Condition::NotExists))
            .await,
        Err(StoreError::ConditionFailed { key: once.clone() })
    );
    assert_eq!(table.get(&once).await.expect("get").expect("item")["a"], json!(1));
}

async fn case_update_exists_on_missing(table: Arc<dyn Table>) {
    let key = Key::new("upd", "missing");
    for condition in [Condition::Exists, Condition::VersionEquals(0)] {
        let result = table
            .update(Update::new(key.clone()).set("a", 1).when(condition.clone()))
            .await;
        assert_eq!(
            result,
            Err(StoreError::ConditionFailed { key: key.clone() }),
            "{condition:?}"
        );
    }
    assert_eq!(table.get(&key).await, Ok(None), "a failed update creates nothing");

    table
        .put(item(json!({"PK": "upd", "SK": "missing", "a": 0})), Condition::None)
        .await
        .expect("put");
    let updated = table
        .update(Update::new(key.clone()).set("a", 1).when(Condition::Exists))
        .await;
    assert_eq!(updated, Ok(item(json!({"PK": "upd", "SK": "missing", "a": 1}))));
}

async fn case_update_version_equals(table: Arc<dyn Table>) {
    let key = Key::new("upd", "doc");
    let v1 = item(json!({"PK": "upd", "SK": "doc", "version": 1, "body": "one"}));
    table.put(v1.clone(), Condition::None).await.expect("put");
    let bump = |body: &str, expected: u64| {
        Update::new(key.clone())
            .set("body", body)
            .add("version", 1)
            .when(Condition::VersionEquals(expected))
    };
    assert_eq!(
        table.update(bump("two", 2)).await,
        Err(StoreError::ConditionFailed { key: key.clone() })
    );
    assert_eq!(table.get(&key).await, Ok(Some(v1)), "the failed update wrote nothing");
    let v2 = item(json!({"PK": "upd", "SK": "doc", "version": 2, "body": "two"}));
    assert_eq!(table.update(bump("two", 1)).await, Ok(v2.clone()));
    assert_eq!(
        table.update(bump("stale", 1)).await,
        Err(StoreError::ConditionFailed { key: key.clone() }),
        "the old version no longer matches"
    );
    let v3 = table
        .update(
            Update::new(key.clone())
                .set("version", 3)
                .when(Condition::VersionEquals(2)),
        )
        .await
        .expect("version set explicitly");
    assert_eq!(v3["version"], json!(3));
    assert_eq!(v3["body"], json!("two"));

    // Only a numeric `version` counts.
    let stringly = Key::new("upd", "stringly");
    table
        .put(
            item(json!({"PK": "upd", "SK": "stringly", "version": "3"})),
            Condition::None,
        )
        .await
        .expect("put");
    assert_eq!(
        table
            .update(
                Update::new(stringly.clone())
                    .set("a", 1)
                    .when(Condition::VersionEquals(3))
            )
            .await,
        Err(StoreError::ConditionFailed { key: stringly })
    );
}

async fn case_update_moves_item_in_indexes(table: Arc<dyn Table>) {
    let user = Key::new("user#1", "profile");
    table
        .put(
            item(json!({"PK": "user#1", "SK": "profile", "name": "a"})),
            Condition::None,
        )
        .await
        .expect("put user#1");
    table
        .put(
            item(json!({"PK": "user#2", "SK": "profile", "GSI1PK": "team#a", "GSI1SK": "name#b"})),
            Condition::None,
        )
        .await
        .expect("put user#2");
    let pks = |items: Vec<Item>| -> Vec<String> {
        items
            .iter()
            .map(|item| item["PK"].as_str().expect("string PK").to_owned())
            .collect()
    };
    let index = |index: Index, pk: &'static str| {
        let table = Arc::clone(&table);
        async move { pks(all_pages(&table, Query::index(index, pk)).await.0) }
    };

    table
        .update(
            Update::new(user.clone())
                .set("GSI1PK", "team#a")
                .set("GSI1SK", "name#a"),
        )
        .await
        .expect("join the index");
    assert_eq!(index(Index::Gsi1, "team#a").await, strings(&["user#1", "user#2"]));

    table
        .update(Update::new(user.clone()).set("GSI1SK", "name#c"))
        .await
        .expect("new index sort key");
    assert_eq!(index(Index::Gsi1, "team#a").await, strings(&["user#2", "user#1"]));

    table
        .update(Update::new(user.clone()).set("GSI1PK", "team#b"))
        .await
        .expect("new index partition");
    assert_eq!(index(Index::Gsi1, "team#a").await, strings(&["user#2"]));
    assert_eq!(index(Index::Gsi1, "team#b").await, strings(&["user#1"]));

    // An update that leaves the index keys alone (SQLite rewrites the body
    // only) is seen through the index.
    table
        .update(Update::new(user.clone()).set("name", "renamed"))
        .await
        .expect("same index keys");
    let listed = all_pages(&table, Query::index(Index::Gsi1, "team#b")).await.0;
    assert_eq!(pks(listed.clone()), strings(&["user#1"]));
    assert_eq!(listed[0]["name"], json!("renamed"));

    table
        .update(
            Update::new(user.clone())
                .remove("GSI1SK")
                .set("GSI2PK", "email")
                .set("GSI2SK", "a@x"),
        )
        .await
        .expect("leave GSI1, join GSI2");
    assert_eq!(index(Index::Gsi1, "team#b").await, Vec::<String>::new());
    assert_eq!(index(Index::Gsi2, "email").await, strings(&["user#1"]));

    // Setting a past ttl expires the item: it leaves the index and `get`.
    let expired = table
        .update(Update::new(user.clone()).set("ttl", now() - 5))
        .await
        .expect("set a past ttl");
    assert_eq!(expired["GSI2PK"], json!("email"), "the update returns what it wrote");
    assert_eq!(index(Index::Gsi2, "email").await, Vec::<String>::new());
    assert_eq!(table.get(&user).await, Ok(None));
}

async fn case_update_expired_item_starts_fresh(table: Arc<dyn Table>) {
    let past = now() - 60;
    let stale = |sk: &str| {
        item(
            json!({"PK": "upd", "SK": sk, "ttl": past, "stale": true, "count": 10, "version": 1,
                    "GSI1PK": "stale-index", "GSI1SK": sk}),
        )
    };
    for sk in ["e1", "e2", "e3", "e4"] {
        table.put(stale(sk), Condition::None).await.expect("put expired");
    }

    let key = Key::new("upd", "e1");
    for condition in [Condition::Exists, Condition::VersionEquals(1)] {
        let result = table
            .update(Update::new(key.clone()).set("x", 1).when(condition.clone()))
            .await;
        assert_eq!(
            result,
            Err(StoreError::ConditionFailed { key: key.clone() }),
            "{condition:?}"
        );
    }
    assert_eq!(table.get(&key).await, Ok(None));

    let fresh = item(json!({"PK": "upd", "SK": "e1", "count": 1, "x": "y"}));
    let result = table
        .update(Update::new(key.clone()).add("count", 1).set("x", "y").remove("stale"))
        .await;
    assert_eq!(result, Ok(fresh.clone()), "only the key and the update survive");
    assert_eq!(table.get(&key).await, Ok(Some(fresh)));

    let result = table
        .update(
            Update::new(Key::new("upd", "e2"))
                .set("x", 2)
                .when(Condition::NotExists),
        )
        .await;
    assert_eq!(result, Ok(item(json!({"PK": "upd", "SK": "e2", "x": 2}))));

    table
        .transact(vec![
            WriteOp::put(item(json!({"PK": "upd", "SK": "other"})), Condition::NotExists),
            WriteOp::Update(Update::new(Key::new("upd", "e3")).add("count", 5)),
            WriteOp::Update(
                Update::new(Key::new("upd", "e4"))
                    .remove("stale")
                    .set("y", true)
                    .when(Condition::NotExists),
            ),
        ])
        .await
        .expect("transaction updating expired items");
    assert_eq!(
        table.get(&Key::new("upd", "e3")).await,
        Ok(Some(item(json!({"PK": "upd", "SK": "e3", "count": 5}))))
    );
    assert_eq!(
        table.get(&Key::new("upd", "e4")).await,
        Ok(Some(item(json!({"PK": "upd", "SK": "e4", "y": true}))))
    );
    let (indexed, _) = all_pages(&table, Query::index(Index::Gsi1, "stale-index")).await;
    assert!(indexed.is_empty(), "no stale index attributes survive: {indexed:?}");
}

async fn case_update_invalid(table: Arc<dyn Table>) {
    let key = Key::new("upd", "bad");
    let update = || Update::new(key.clone());
    let invalid = [
        update().set("PK", "other"),
        update().set("SK", "other"),
        update().set("a", 1).remove("PK"),
        update().add("SK", 1),
        update().set("a", 1).remove("a"),
        update().set("a", 1).add("a", 1),
        update().remove("a").add("a", 1),
        update().add("a", 1).add("a", 2),
        update().remove("a").remove("a"),
        update(),
        update().set("", 1),
        update().set("GSI1PK", 5),
        update().set("GSI2SK", ""),
        update().add("GSI1SK", 1),
        Update::new(Key::new("upd", "")).set("a", 1),
    ];
    for bad in invalid {
        let result = table.update(bad.clone()).await;
        assert!(matches!(result, Err(StoreError::Invalid(_))), "{bad:?} gave {result:?}");
        let result = table.transact(vec![WriteOp::Update(bad.clone())]).await;
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "{bad:?} in a transaction gave {result:?}"
        );
    }
    assert_eq!(table.get(&key).await, Ok(None), "nothing was written");

    // Adding to something that is not a number.
    let typed = Key::new("upd", "typed");
    let stored = item(json!({"PK": "upd", "SK": "typed", "label": "x"}));
    table.put(stored.clone(), Condition::None).await.expect("put");
    let result = table.update(Update::new(typed.clone()).add("label", 1)).await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "gave {result:?}");
    let result = table
        .transact(vec![
            WriteOp::put(item(json!({"PK": "upd", "SK": "side"})), Condition::None),
            WriteOp::Update(Update::new(typed.clone()).add("label", 1)),
        ])
        .await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "gave {result:?}");
    assert_eq!(table.get(&typed).await, Ok(Some(stored)));
    assert_eq!(table.get(&Key::new("upd", "side")).await, Ok(None));
}

async fn case_update_in_transaction(table: Arc<dyn Table>) {
    let a = Key::new("utx", "a");
    let stored_a = item(json!({"PK": "utx", "SK": "a", "n": 1, "version": 1}));
    table.put(stored_a.clone(), Condition::None).await.expect("put a");
    table
        .put(item(json!({"PK": "utx", "SK": "c"})), Condition::None)
        .await
        .expect("put c");
    let before = all_pages(&table, Query::partition("utx")).await.0;

    // Another operation fails: the update is rolled back.
    let result = table
        .transact(vec![
            WriteOp::Update(Update::new(a.clone()).add("n", 1).set("x", "y")),
            WriteOp::Update(Update::new(Key::new("utx", "new")).set("z", 1)),
            WriteOp::put(item(json!({"PK": "utx", "SK": "c"})), Condition::NotExists),
        ])
        .await;
    assert_eq!(
        result,
        Err(StoreError::TransactionConditionFailed {
            index: 2,
            key: Key::new("utx", "c")
        })
    );
    assert_eq!(
        all_pages(&table, Query::partition("utx")).await.0,
        before,
        "nothing was written"
    );

    // The update's own condition fails: its index is reported.
    for (condition, target) in [
        (Condition::VersionEquals(7), a.clone()),
        (Condition::NotExists, a.clone()),
        (Condition::Exists, Key::new("utx", "missing")),
    ] {
        let result = table
            .transact(vec![
                WriteOp::put(item(json!({"PK": "utx", "SK": "b"})), Condition::None),
                WriteOp::Update(Update::new(target.clone()).set("x", 1).when(condition.clone())),
                WriteOp::Increment {
                    key: Key::new("utx", "counter"),
                    by: 1,
                },
            ])
            .await;
        assert_eq!(
            result,
            Err(StoreError::TransactionConditionFailed { index: 1, key: target }),
            "{condition:?}"
        );
        assert_eq!(
            all_pages(&table, Query::partition("utx")).await.0,
            before,
            "{condition:?}"
        );
    }

    // All conditions hold: every update is applied.
    table
        .transact(vec![
            WriteOp::put(item(json!({"PK": "utx", "SK": "b"})), Condition::None),
            WriteOp::Update(
                Update::new(a.clone())
                    .add("version", 1)
                    .add("n", 10)
                    .set("x", "y")
                    .when(Condition::VersionEquals(1)),
            ),
            WriteOp::Update(Update::new(Key::new("utx", "new")).set("z", 1).add("k", 2)),
            WriteOp::Update(
                Update::new(Key::new("utx", "c"))
                    .set("seen", true)
                    .when(Condition::Exists),
            ),
        ])
        .await
        .expect("transaction");
    assert_eq!(
        table.get(&a).await,
        Ok(Some(item(
            json!({"PK": "utx", "SK": "a", "n": 11, "version": 2, "x": "y"})
        )))
    );
    assert_eq!(
        table.get(&Key::new("utx", "new")).await,
        Ok(Some(item(json!({"PK": "utx", "SK": "new", "z": 1, "k": 2}))))
    );
    assert_eq!(
        table.get(&Key::new("utx", "c")).await,
        Ok(Some(item(json!({"PK": "utx", "SK": "c", "seen": true}))))
    );
    assert_eq!(
        query_sort_keys(&table, Query::partition("utx")).await,
        strings(&["a", "b", "c", "new"])
    );

    // An update shares no key with another operation.
    let twice = vec![
        WriteOp::Update(Update::new(a.clone()).set("x", 1)),
        WriteOp::delete(a.clone(), Condition::None),
    ];
    assert!(matches!(table.transact(twice).await, Err(StoreError::Invalid(_))));
    let twice = vec![
        WriteOp::Update(Update::new(a.clone()).set("x", 1)),
        WriteOp::Update(Update::new(a.clone()).set("y", 1)),
    ];
    assert!(matches!(table.transact(twice).await, Err(StoreError::Invalid(_))));

    // An update counts towards the transaction limit.
    let mut ops: Vec<WriteOp> = (0..MAX_TRANSACTION_ITEMS)
        .map(|n| {
            WriteOp::put(
                item(json!({"PK": "utx-bulk", "SK": format!("{n:03}")})),
                Condition::None,
            )
        })
        .collect();
    ops.push(WriteOp::Update(Update::new(Key::new("utx-bulk", "extra")).set("x", 1)));
    assert!(matches!(table.transact(ops).await, Err(StoreError::Invalid(_))));
    assert_eq!(
        query_sort_keys(&table, Query::partition("utx-bulk")).await,
        Vec::<String>::new()
    );
}

async fn case_update_concurrent_add(table: Arc<dyn Table>) {
    let key = Key::new("upd", "concurrent");
    let tasks = (0..20).map(|writer| {
        let table = Arc::clone(&table);
        let key = key.clone();
        tokio::spawn(async move {
            table
                .update(Update::new(key).add("hits", 1).set(format!("writer#{writer}"), true))
                .await
        })
    });
    let mut seen: Vec<i64> = join_all(tasks)
        .await
        .into_iter()
        .map(|joined| {
            let item = joined.expect("task").expect("update");
            item["hits"].as_i64().expect("integer hits")
        })
        .collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=20).collect::<Vec<i64>>(),
        "each update returned the item right after its own write"
    );
    let stored = table.get(&key).await.expect("get").expect("item");
    assert_eq!(stored["hits"], json!(20));
    assert_eq!(stored.len(), 2 + 1 + 20, "every writer's attribute is kept");
}

// ---------------------------------------------------------------------------
// SQLite only: durability

/// How many acknowledged writes to wait for before killing the probe.
const PROBE_ACKS_BEFORE_KILL: usize = 200;

/// Runs `quper-store-probe`, lets it acknowledge writes, kills it with
/// SIGKILL mid-write and returns every acknowledged sequence number,
/// including those still in the pipe when it died.
/// Follows a prefix scan to its end; returns the keys it found and each page's
/// size.
async fn scan_all(table: &Arc<dyn Table>, prefix: &str, limit: u32) -> (BTreeSet<(String, String)>, Vec<usize>) {
    let mut keys = BTreeSet::new();
    let mut sizes = Vec::new();
    let mut cursor = None;
    for _ in 0..1000 {
        let page = table.scan_prefix(prefix, limit, cursor).await.expect("scan");
        sizes.push(page.items.len());
        for item in &page.items {
            let key = Key::of(item).expect("key");
            assert!(keys.insert((key.pk, key.sk)), "an item came twice");
        }
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return (keys, sizes),
        }
    }
    panic!("the scan does not end");
}

/// Items of several partitions under a prefix, a partition whose key only
/// extends the prefix's text (`T#acme2...` next to `T#acme#`), an expired
/// item and items elsewhere: the scan returns exactly the live items under
/// the prefix, in pages of at most `limit`, each once.
async fn case_scan_prefix(table: Arc<dyn Table>) {
    let mut expected = BTreeSet::new();
    for partition in ["T#acme#USER", "T#acme#INC#0000000001", "T#acme#SOURCE"] {
        for n in 0..5 {
            let sk = format!("{n:03}");
            table
                .put(item(json!({ "PK": partition, "SK": sk, "n": n })), Condition::None)
                .await
                .expect("put");
            expected.insert((partition.to_owned(), sk));
        }
    }
    table
        .put(
            item(json!({ "PK": "T#acme#USER", "SK": "old", "ttl": now() - 10 })),
            Condition::None,
        )
        .await
        .expect("put expired");
    for (pk, sk) in [
        ("T#acme", "META"),
        ("T#acme2#USER", "001"),
        ("T#acmf", "x"),
        ("LOGIN#a@b.c", "T#acme"),
    ] {
        table
            .put(item(json!({ "PK": pk, "SK": sk })), Condition::None)
            .await
            .expect("put elsewhere");
    }
    for limit in [1, 4, 1000] {
        let (found, sizes) = scan_all(&table, "T#acme#", limit).await;
        assert_eq!(found, expected, "limit {limit}");
        assert!(sizes.iter().all(|size| *size <= limit as usize), "{sizes:?}");
    }
    let (nothing, _) = scan_all(&table, "T#nobody#", 10).await;
    assert!(nothing.is_empty());
}

/// Deleting the items of each page before asking for the next (what the
/// purge does) still visits every item once.
async fn case_scan_prefix_deleting_while_scanning(table: Arc<dyn Table>) {
    for n in 0..23 {
        table
            .put(
                item(json!({ "PK": format!("T#gone#P{}", n % 3), "SK": format!("{n:03}") })),
                Condition::None,
            )
            .await
            .expect("put");
    }
    let mut seen = 0;
    let mut cursor = None;
    for _ in 0..1000 {
        let page = table.scan_prefix("T#gone#", 4, cursor).await.expect("scan");
        for item in &page.items {
            table
                .delete(&Key::of(item).expect("key"), Condition::None)
                .await
                .expect("delete");
            seen += 1;
        }
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, 23);
    let (left, _) = scan_all(&table, "T#gone#", 100).await;
    assert!(left.is_empty(), "{left:?}");
}

async fn case_scan_prefix_invalid(table: Arc<dyn Table>) {
    for (prefix, limit, cursor) in [
        ("", 10, None),
        ("T#x#", 0, None),
        ("T#x#", 10, Some("%%%".to_owned())),
        ("T#x#", 10, Some("e30".to_owned())),
    ] {
        let result = table.scan_prefix(prefix, limit, cursor.clone()).await;
        assert!(
            matches!(result, Err(StoreError::Invalid(_))),
            "{prefix:?} {limit} {cursor:?}: {result:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Batches: get_many and transact_many

async fn case_get_many_order_absent_expired(table: Arc<dyn Table>) {
    assert_eq!(table.get_many(&[]).await, Ok(Vec::new()));
    for n in 0..3 {
        table
            .put(
                item(json!({"PK": "many", "SK": format!("live{n}"), "n": n})),
                Condition::None,
            )
            .await
            .expect("put live");
    }
    table
        .put(
            item(json!({"PK": "many", "SK": "expired", "ttl": now() - 60})),
            Condition::None,
        )
        .await
        .expect("put expired");
    table
        .put(
            item(json!({"PK": "many", "SK": "later", "ttl": now() + 3600})),
            Condition::None,
        )
        .await
        .expect("put expiring later");
    let keys = [
        Key::new("many", "live2"),
        Key::new("many", "absent"),
        Key::new("many", "expired"),
        Key::new("many", "live0"),
        Key::new("other", "live1"),
        Key::new("many", "later"),
        Key::new("many", "live1"),
    ];
    let found = table.get_many(&keys).await.expect("get_many");
    let answered: Vec<Option<String>> = found
        .iter()
        .map(|item| item.as_ref().map(|item| item["SK"].as_str().expect("SK").to_owned()))
        .collect();
    let expected = [
        Some("live2"),
        None,
        None,
        Some("live0"),
        None,
        Some("later"),
        Some("live1"),
    ];
    assert_eq!(answered, expected.map(|sk| sk.map(str::to_owned)).to_vec());
    // The items are whole, as `get` answers them.
    for (key, item) in keys.iter().zip(&found) {
        assert_eq!(item, &table.get(key).await.expect("get"), "{key:?}");
    }

    // The most keys one call takes, answered in order.
    let full: Vec<Key> = (0..MAX_BATCH_GET_KEYS)
        .map(|n| match n {
            7 => Key::new("many", "live1"),
            _ => Key::new("many", format!("absent{n}")),
        })
        .collect();
    let answers = table.get_many(&full).await.expect("get_many of the most keys");
    assert_eq!(answers.len(), MAX_BATCH_GET_KEYS);
    for (n, answer) in answers.iter().enumerate() {
        assert_eq!(answer.is_some(), n == 7, "key {n}");
    }
}

async fn case_get_many_refusals(table: Arc<dyn Table>) {
    let too_many: Vec<Key> = (0..=MAX_BATCH_GET_KEYS)
        .map(|n| Key::new("refuse", format!("k{n}")))
        .collect();
    assert!(
        matches!(table.get_many(&too_many).await, Err(StoreError::Invalid(_))),
        "more than {MAX_BATCH_GET_KEYS} keys"
    );
    let repeated = [
        Key::new("refuse", "a"),
        Key::new("refuse", "b"),
        Key::new("refuse", "a"),
    ];
    assert!(
        matches!(table.get_many(&repeated).await, Err(StoreError::Invalid(_))),
        "a key asked twice"
    );
    let empty = [Key::new("refuse", "")];
    assert!(matches!(table.get_many(&empty).await, Err(StoreError::Invalid(_))));

    let groups: Vec<Vec<WriteOp>> = (0..=MAX_TRANSACTION_GROUPS)
        .map(|n| {
            vec![WriteOp::put(
                item(json!({"PK": "refuse", "SK": format!("g{n}")})),
                Condition::None,
            )]
        })
        .collect();
    let results = table.transact_many(groups).await;
    assert_eq!(results.len(), MAX_TRANSACTION_GROUPS + 1);
    assert!(
        results
            .iter()
            .all(|result| matches!(result, Err(StoreError::Invalid(_))))
    );
    let written = table.query(Query::partition("refuse")).await.expect("query");
    assert!(written.items.is_empty(), "a refused call writes nothing");
}

async fn case_transact_many_per_group_results(table: Arc<dyn Table>) {
    assert!(table.transact_many(Vec::new()).await.is_empty());
    table
        .put(item(json!({"PK": "groups", "SK": "taken"})), Condition::None)
        .await
        .expect("put taken");
    let group = |name: &str, guard: &str| {
        vec![
            WriteOp::put(item(json!({"PK": "groups", "SK": guard})), Condition::NotExists),
            WriteOp::put(
                item(json!({"PK": "groups", "SK": format!("{name}-a")})),
                Condition::None,
            ),
            WriteOp::Increment {
                key: Key::new("groups", format!("{name}-counter")),
                by: 1,
            },
        ]
    };
    let results = table
        .transact_many(vec![
            group("first", "first-guard"),
            group("second", "taken"),
            group("third", "third-guard"),
            // Invalid: two operations on one item.
            vec![
                WriteOp::put(item(json!({"PK": "groups", "SK": "twice"})), Condition::None),
                WriteOp::delete(Key::new("groups", "twice"), Condition::None),
            ],
        ])
        .await;
    assert_eq!(results.len(), 4);
    assert_eq!(results[0], Ok(()));
    assert_eq!(
        results[1],
        Err(StoreError::TransactionConditionFailed {
            index: 0,
            key: Key::new("groups", "taken")
        })
    );
    assert_eq!(results[2], Ok(()));
    assert!(matches!(results[3], Err(StoreError::Invalid(_))), "{:?}", results[3]);
    assert_eq!(
        query_sort_keys(&table, Query::partition("groups")).await,
        strings(&[
            "first-a",
            "first-counter",
            "first-guard",
            "taken",
            "third-a",
            "third-counter",
            "third-guard"
        ]),
        "the failed and the invalid groups wrote nothing"
    );
}

async fn case_transact_many_puts_and_conditional_groups(table: Arc<dyn Table>) {
    table
        .put(item(json!({"PK": "mixed", "SK": "v", "version": 3})), Condition::None)
        .await
        .expect("put versioned");
    // 30 unconditional puts (more than one BatchWriteItem request on DynamoDB).
    let puts: Vec<WriteOp> = (0..30)
        .map(|n| {
            WriteOp::put(
                item(json!({"PK": "mixed", "SK": format!("p{n:02}"), "n": n})),
                Condition::None,
            )
        })
        .collect();
    let results = table
        .transact_many(vec![
            puts,
            vec![WriteOp::Update(
                Update::new(Key::new("mixed", "v"))
                    .add("version", 1)
                    .when(Condition::VersionEquals(3)),
            )],
            vec![
                WriteOp::Check {
                    key: Key::new("mixed", "v"),
                    condition: Condition::VersionEquals(99),
                },
                WriteOp::put(item(json!({"PK": "mixed", "SK": "never"})), Condition::None),
            ],
            vec![WriteOp::put(
                item(json!({"PK": "mixed", "SK": "single"})),
                Condition::None,
            )],
        ])
        .await;
    assert_eq!(results[0], Ok(()));
    assert_eq!(results[1], Ok(()));
    assert_eq!(
        results[2],
        Err(StoreError::TransactionConditionFailed {
            index: 0,
            key: Key::new("mixed", "v")
        })
    );
    assert_eq!(results[3], Ok(()));
    let keys: Vec<Key> = (0..30).map(|n| Key::new("mixed", format!("p{n:02}"))).collect();
    let found = table.get_many(&keys).await.expect("get_many");
    for (n, item) in found.iter().enumerate() {
        assert_eq!(item.as_ref().map(|item| item["n"].clone()), Some(json!(n)), "put {n}");
    }
    let versioned = table
        .get(&Key::new("mixed", "v"))
        .await
        .expect("get")
        .expect("versioned");
    assert_eq!(versioned["version"], json!(4));
    assert_eq!(table.get(&Key::new("mixed", "never")).await, Ok(None));
    assert!(table.get(&Key::new("mixed", "single")).await.expect("get").is_some());
}

/// Groups that increment one counter (every new incident counts itself in
/// the same list counters) all apply, each once.
async fn case_transact_many_shared_counter(table: Arc<dyn Table>) {
    let counter = Key::new("shared", "counter");
    let groups: Vec<Vec<WriteOp>> = (0..40)
        .map(|n| {
            vec![
                WriteOp::put(
                    item(json!({"PK": "shared", "SK": format!("row{n:02}")})),
                    Condition::NotExists,
                ),
                WriteOp::Increment {
                    key: counter.clone(),
                    by: 1,
                },
            ]
        })
        .collect();
    let results = table.transact_many(groups).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(counter_value(&table, &counter).await, Some(40));
}

fn run_probe_until_killed(database: &std::path::Path) -> Vec<u64> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_quper-store-probe"))
        .arg(database)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawn quper-store-probe");
    let stdout = child.stdout.take().expect("probe stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let parse = |line: &str| line.strip_prefix("acked ").and_then(|n| n.trim().parse::<u64>().ok());
    let mut acked = Vec::new();
    while acked.len() < PROBE_ACKS_BEFORE_KILL {
        match lines.next() {
            Some(Ok(line)) => acked.extend(parse(&line)),
            _ => break,
        }
    }
    child.kill().expect("SIGKILL the probe");
    let status = child.wait().expect("reap the probe");
    acked.extend(lines.map_while(Result::ok).filter_map(|line| parse(&line)));
    assert!(!status.success(), "the probe was killed, not finished: {status:?}");
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = dir.path().join("probe.db");
    let probe_database = database.clone();
    let acked = tokio::task::spawn_blocking(move || run_probe_until_killed(&probe_database))
        .await
        .expect("probe thread");
    assert!(
        acked.len() >= PROBE_ACKS_BEFORE_KILL,
        "the probe acknowledged only {} writes",
        acked.len()
    );

    let table: Arc<dyn Table> = Arc::new(SqliteTable::open(&database).expect("reopen after kill -9"));
    let (items, _) = all_pages(&table, Query::partition("probe")).await;
    let stored: BTreeSet<String> = sort_keys(&items).into_iter().collect();
    let lost: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|n| !stored.contains(&format!("{n:010}")))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost after kill -9, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
}

/// The checkpointer thread, not the writer's commits, copies the WAL into the
/// database file: a megabyte of writes (far below the writer's fallback
/// threshold of 32 MB) reaches the database file within moments, and every
/// item still reads back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_wal_is_checkpointed_off_the_writer() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = dir.path().join("checkpoint.db");
    let table: Arc<dyn Table> = Arc::new(SqliteTable::open(&database).expect("open SQLite table"));
    let filler = "x".repeat(1000);
    let writes = (0..1000).map(|n| {
        let table = table.clone();
        let filler = filler.clone();
        async move {
            let put = item(json!({"PK": "wal", "SK": format!("{n:05}"), "filler": filler}));
            table.put(put, Condition::NotExists).await
        }
    });
    for written in join_all(writes).await {
        written.expect("put");
    }
    let file_size = || std::fs::metadata(&database).map(|meta| meta.len()).unwrap_or(0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while file_size() < 1_000_000 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        file_size() >= 1_000_000,
        "the database file holds {} bytes: the WAL was not checkpointed",
        file_size()
    );
    let (items, _) = all_pages(&table, Query::partition("wal")).await;
    assert_eq!(items.len(), 1000);
}

/// The schema of databases created before items moved to a rowid table: the
/// same columns, clustered on `(pk, sk)`.
const CLUSTERED_SCHEMA: &str = "
CREATE TABLE items (
    pk TEXT NOT NULL, sk TEXT NOT NULL, gsi1pk TEXT, gsi1sk TEXT, gsi2pk TEXT, gsi2sk TEXT,
    ttl INTEGER, body TEXT NOT NULL, PRIMARY KEY (pk, sk)
) WITHOUT ROWID;";

/// Whether the `items` table of the database at `path` is `WITHOUT ROWID`.
fn items_table_is_clustered(path: &std::path::Path) -> bool {
    let connection = rusqlite::Connection::open(path).expect("open the database file");
    let sql: String = connection
        .query_row("SELECT sql FROM sqlite_schema WHERE name = 'items'", [], |row| {
            row.get(0)
        })
        .expect("the items table");
    sql.contains("WITHOUT ROWID")
}

/// New database files keep items in a rowid table (large JSON rows), and a
/// file made with the earlier clustered table opens and works as before:
/// conditional puts, updates, counters, index and range queries, deletes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_files_of_either_item_layout_work() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let fresh = dir.path().join("fresh.db");
    let earlier = dir.path().join("earlier.db");
    rusqlite::Connection::open(&earlier)
        .and_then(|connection| connection.execute_batch(CLUSTERED_SCHEMA))
        .expect("create a database with the clustered table");
    for (path, clustered) in [(&fresh, false), (&earlier, true)] {
        let table: Arc<dyn Table> = Arc::new(SqliteTable::open(path).expect("open SQLite table"));
        for n in 0..3 {
            let put =
                item(json!({"PK": "t#1", "SK": format!("a#{n}"), "GSI1PK": "all", "GSI1SK": format!("{n}"), "n": n}));
            table.put(put, Condition::NotExists).await.expect("put");
        }
        let again = item(json!({"PK": "t#1", "SK": "a#0", "n": 9}));
        assert!(
            matches!(
                table.put(again, Condition::NotExists).await,
                Err(StoreError::ConditionFailed { .. })
            ),
            "{path:?}: the item exists"
        );
        let updated = table
            .update(Update::new(Key::new("t#1", "a#1")).add("n", 5).when(Condition::Exists))
            .await
            .expect("update");
        assert_eq!(updated["n"], 6, "{path:?}");
        assert_eq!(
            table
                .increment(&Key::new("t#1", "count"), 2, None)
                .await
                .expect("count"),
            2
        );
        let (items, _) = all_pages(&table, Query::partition("t#1").prefix("a#")).await;
        let names: Vec<_> = items.iter().map(|item| item["SK"].clone()).collect();
        assert_eq!(names, [json!("a#0"), json!("a#1"), json!("a#2")], "{path:?}");
        let (indexed, _) = all_pages(&table, Query::index(Index::Gsi1, "all").backwards()).await;
        assert_eq!(indexed.len(), 3, "{path:?}");
        assert_eq!(indexed[0]["SK"], "a#2", "{path:?}");
        table
            .delete(&Key::new("t#1", "a#2"), Condition::Exists)
            .await
            .expect("delete");
        assert!(table.get(&Key::new("t#1", "a#2")).await.expect("get").is_none());
        drop(table);
        assert_eq!(items_table_is_clustered(path), clustered, "{path:?}");
    }
}
