//! One metadata-store test suite, run against SQLite and (when `SNAPEX_TEST_POSTGRES_URL` is
//! set, or required by `SNAPEX_TEST_REQUIRE_SERVICES=1`) PostgreSQL.

use chrono::Duration;
use snapex::store::{
    ClusterType, DbKind, JobState, Label, NewCluster, NewExportBucket, NewExportJob, NewSnapshot,
    Page, SnapshotPart, StateReason, Store, StoreError,
};

use crate::support;

async fn sqlite_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in_data_dir(dir.path()).await.unwrap();
    assert_eq!(store.kind(), DbKind::Sqlite);
    (dir, store)
}

async fn postgres_store() -> Option<Store> {
    let url = support::postgres_database().await?;
    let store = Store::open(&url).await.unwrap();
    assert_eq!(store.kind(), DbKind::Postgres);
    Some(store)
}

/// Runs one suite function on SQLite, then on PostgreSQL when available.
macro_rules! store_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let (_dir, store) = super::sqlite_store().await;
                    super::$name(&store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(store) = super::postgres_store().await {
                        super::$name(&store).await;
                    }
                }
            )*
        }
    };
}

store_suite!(
    orgs_and_projects_round_trip,
    project_names_are_unique_and_need_an_org,
    clusters_are_unique_per_project,
    snapshots_list_newest_first_with_counts,
    a_snapshot_has_at_most_one_active_export,
    admission_respects_the_replica_set_limit,
    a_sharded_job_starts_all_shards_past_the_limit,
    expired_leases_fail_jobs_as_interrupted,
    a_node_that_lost_its_job_cannot_overwrite_the_verdict,
    a_heartbeat_after_the_check_keeps_a_live_node_s_job,
    a_job_recovered_as_completed_records_its_counts,
    cancelling_a_queued_job_removes_it_from_the_queue,
    backup_schedule_upsert_and_policy_lookup,
    a_backup_is_claimed_by_exactly_one_of_many_concurrent_claims,
);

async fn project(store: &Store) -> (String, String) {
    let org = store.create_org("Org One").await.unwrap();
    let name = format!("proj-{}", snapex::store::new_id());
    let project = store.create_project(&org.id, &name).await.unwrap();
    (org.id, project.id)
}

async fn cluster(store: &Store, group: &str, name: &str, rs: &[&str]) -> snapex::store::Cluster {
    store
        .create_cluster(
            group,
            NewCluster {
                name: name.into(),
                cluster_type: if rs.len() > 1 {
                    ClusterType::Sharded
                } else {
                    ClusterType::Replicaset
                },
                replica_sets: rs.iter().map(|s| s.to_string()).collect(),
                labels: vec![Label {
                    key: "env".into(),
                    value: "test".into(),
                }],
            },
        )
        .await
        .unwrap()
}

async fn snapshot(store: &Store, c: &snapex::store::Cluster) -> snapex::store::Snapshot {
    store
        .create_snapshot(
            c,
            NewSnapshot {
                status: snapex::store::SnapshotStatus::Completed,
                snapshot_type: snapex::store::SnapshotType::OnDemand,
                frequency_type: snapex::store::FrequencyType::OnDemand,
                description: None,
                created_at: snapex::store::now(),
                expires_at: None,
                mongod_version: Some("8.0.4".into()),
                parts: c
                    .replica_sets
                    .iter()
                    .map(|rs| SnapshotPart {
                        replica_set_name: rs.clone(),
                        url: format!("file:///tmp/{rs}"),
                        role_id: None,
                        storage_size_bytes: 10,
                        mongod_version: Some("8.0.4".into()),
                    })
                    .collect(),
                policy_item_id: None,
                owns_files: false,
            },
        )
        .await
        .unwrap()
}

async fn job(
    store: &Store,
    c: &snapex::store::Cluster,
    s: &snapex::store::Snapshot,
) -> Result<snapex::store::ExportJob, StoreError> {
    store
        .create_export_job(NewExportJob {
            group_id: c.group_id.clone(),
            cluster_id: c.id.clone(),
            cluster_name: c.name.clone(),
            snapshot_id: s.id.clone(),
            export_bucket_id: snapex::store::new_id(),
            created_at: snapex::store::now(),
            custom_data: vec![],
            prefix: "exported_snapshots/x".into(),
            replica_sets: c.replica_sets.clone(),
            namespaces: Default::default(),
            export_format: None,
        })
        .await
}

async fn orgs_and_projects_round_trip(store: &Store) {
    let org = store.create_org("Acme").await.unwrap();
    assert_eq!(org.id.len(), 24);
    assert_eq!(store.get_org(&org.id).await.unwrap().unwrap().name, "Acme");
    let name = format!("p-{}", org.id);
    let p = store.create_project(&org.id, &name).await.unwrap();
    assert_eq!(store.get_project(&p.id).await.unwrap().unwrap(), p);
    assert_eq!(
        store.get_project_by_name(&name).await.unwrap().unwrap().id,
        p.id
    );
    assert!(
        store
            .get_project(&snapex::store::new_id())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_org(&snapex::store::new_id())
            .await
            .unwrap()
            .is_none()
    );
}

async fn project_names_are_unique_and_need_an_org(store: &Store) {
    let org = store.create_org("Acme").await.unwrap();
    let name = format!("dup-{}", org.id);
    store.create_project(&org.id, &name).await.unwrap();
    assert!(matches!(
        store.create_project(&org.id, &name).await,
        Err(StoreError::Duplicate { .. })
    ));
    assert!(matches!(
        store
            .create_project(&snapex::store::new_id(), "other")
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

async fn clusters_are_unique_per_project(store: &Store) {
    let (_, g1) = project(store).await;
    let (_, g2) = project(store).await;
    let c = cluster(store, &g1, "c1", &["rs0"]).await;
    assert_eq!(store.get_cluster(&g1, "c1").await.unwrap().unwrap(), c);
    assert!(store.get_cluster(&g2, "c1").await.unwrap().is_none());
    cluster(store, &g2, "c1", &["rs0"]).await;
    let dup = store
        .create_cluster(
            &g1,
            NewCluster {
                name: "c1".into(),
                cluster_type: ClusterType::Replicaset,
                replica_sets: vec!["rs0".into()],
                labels: vec![],
            },
        )
        .await;
    assert!(matches!(dup, Err(StoreError::Duplicate { .. })));
    let (list, total) = store.list_clusters(&g1, Page::default()).await.unwrap();
    assert_eq!((list.len(), total), (1, 1));
}

async fn snapshots_list_newest_first_with_counts(store: &Store) {
    let (_, g) = project(store).await;
    let c = cluster(store, &g, "c", &["rs0"]).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(snapshot(store, &c).await.id);
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let (page1, total) = store
        .list_snapshots(
            &c.id,
            Page {
                page_num: 1,
                items_per_page: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(total, 3);
    assert_eq!(
        page1.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        vec![ids[2].clone(), ids[1].clone()]
    );
    let (page2, _) = store
        .list_snapshots(
            &c.id,
            Page {
                page_num: 2,
                items_per_page: 2,
            },
        )
        .await
        .unwrap();
    assert_eq!(page2[0].id, ids[0]);
    assert_eq!(page2[0].parts[0].replica_set_name, "rs0");
    assert!(store.delete_snapshot(&c.id, &ids[0]).await.unwrap());
    assert!(!store.delete_snapshot(&c.id, &ids[0]).await.unwrap());
}

async fn a_snapshot_has_at_most_one_active_export(store: &Store) {
    let (_, g) = project(store).await;
    let c = cluster(store, &g, "c", &["rs0"]).await;
    let s = snapshot(store, &c).await;
    let first = job(store, &c, &s).await.unwrap();
    assert_eq!(first.state, JobState::Queued);
    assert!(matches!(
        job(store, &c, &s).await,
        Err(StoreError::Duplicate { .. })
    ));
    // once the first is over, a new export of the same snapshot is allowed
    store.request_cancel(&first.id).await.unwrap();
    job(store, &c, &s).await.unwrap();
}

async fn admission_respects_the_replica_set_limit(store: &Store) {
    let (_, g) = project(store).await;
    let c = cluster(store, &g, "c", &["rs0"]).await;
    let mut jobs = Vec::new();
    for _ in 0..3 {
        let s = snapshot(store, &c).await;
        jobs.push(job(store, &c, &s).await.unwrap());
    }
    let lease = Duration::seconds(30);
    let a = store.admit_next_job("n1", 2, lease).await.unwrap().unwrap();
    let b = store.admit_next_job("n2", 2, lease).await.unwrap().unwrap();
    // created order
    assert_eq!(a.job.id, jobs[0].id);
    assert_eq!(b.job.id, jobs[1].id);
    assert_eq!(a.job.state, JobState::InProgress);
    assert!(
        store
            .admit_next_job("n1", 2, lease)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.running_replica_sets().await.unwrap(), 2);
    assert!(store.heartbeat(&a.job.id, "n1", lease).await.unwrap());
    assert!(!store.heartbeat(&a.job.id, "n2", lease).await.unwrap());
    assert!(
        store
            .finish_part(&a.job.id, "rs0", "n1", "{}")
            .await
            .unwrap()
    );
    assert!(
        store
            .finish_job(&a.job.id, JobState::Successful, None)
            .await
            .unwrap()
    );
    let done = store
        .get_export_job_by_id(&a.job.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done.state, JobState::Successful);
    assert!(done.finished_at.is_some());
    let c3 = store.admit_next_job("n1", 2, lease).await.unwrap().unwrap();
    assert_eq!(c3.job.id, jobs[2].id);
}

async fn a_sharded_job_starts_all_shards_past_the_limit(store: &Store) {
    let (_, g) = project(store).await;
    let single = cluster(store, &g, "single", &["rs0"]).await;
    let sharded = cluster(store, &g, "sharded", &["s0", "s1", "s2"]).await;
    let s1 = snapshot(store, &single).await;
    job(store, &single, &s1).await.unwrap();
    let s2 = snapshot(store, &sharded).await;
    job(store, &sharded, &s2).await.unwrap();
    let lease = Duration::seconds(30);
    store.admit_next_job("n1", 2, lease).await.unwrap().unwrap();
    let big = store.admit_next_job("n1", 2, lease).await.unwrap().unwrap();
    assert_eq!(big.job.parts.len(), 3);
    assert_eq!(store.running_replica_sets().await.unwrap(), 4);
}

async fn expired_leases_fail_jobs_as_interrupted(store: &Store) {
    let (_, g) = project(store).await;
    let c = cluster(store, &g, "c", &["rs0"]).await;
    let s = snapshot(store, &c).await;
    job(store, &c, &s).await.unwrap();
    let claimed = store
        .admit_next_job("dead-node", 5, Duration::milliseconds(1))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let recovered = store
        .fail_interrupted_jobs(snapex::store::now(), None)
        .await
        .unwrap();
    assert!(recovered.iter().any(|r| r.id == claimed.job.id));
    let j = store
        .get_export_job_by_id(&claimed.job.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(j.state, JobState::Failed);
    let reason = j.state_reason.unwrap();
    assert!(
        reason.message.contains("interrupted") && reason.message.contains("dead-node"),
        "{reason:?}"
    );
    assert_eq!(store.running_replica_sets().await.unwrap(), 0);
}

/// No false death (issue 10): a node sees a job's lease expired, but its owner renews it before
/// the decision is written — the decision's own transaction re-checks the lease and leaves the
/// job alone, and the owner still holds it.
async fn a_heartbeat_after_the_check_keeps_a_live_node_s_job(store: &Store) {
    let (_, g) = project(store).await;
    let c = cluster(store, &g, "c", &["rs0"]).await;
    let s = snapshot(store, &c).await;
    job(store, &c, &s).await.unwrap();
    let claimed = store
        .admit_next_job("late", 5, Duration::milliseconds(1))
        .await
        .unwrap()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let seen = store
        .interrupted_jobs(snapex::store::now(), None)
        .await
        .unwrap();
    assert!(seen.iter().any(|j| j.id == claimed.job.id));
    assert!(
        store
            .heartbeat(&claimed.job.id, "late", Duration::seconds(30))
            .await
            .unwrap()
    );
    let reason = snapex::store::interrupted_reason(Some("late"));
    assert!(
        !store
            .recover_job(
                &claimed.job.id,
                None,
                &snapex::store::Recovery::Interrupted { reason }
            )
            .await
            .unwrap()
    );
    let j = store
        .get_export_job_by_id(&claimed.job.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(j.state, JobState::InProgress);
    assert!(
        store
            .heartbeat(&claimed.job.id, "late", Duration::seconds(30))
            .await
            .unwrap()
    );
}

/// An interrupted job whose bucket held a verified `.complete` is recorded `Successful` with
/// every collection counted; a later heartbeat of its dead owner cannot revive it.
async fn a_job_recovered_as_completed_records_its_counts(store: &Store) {
    let (_, g) = project(store).await;
    let c = cluster(store, &g, "c", &["rs0"]).await;
    let s = snapshot(store, &c).await;
    job(store, &c, &s).await.unwrap();
    let claimed = store
        .admit_next_job("dead", 5, Duration::seconds(30))
        .await
        .unwrap()
        .unwrap();
    let parts = vec![snapex::store::RecoveredPart {
        replica_set: "rs0".into(),
        summary: "{}".into(),
        collections: 4,
    }];
    assert!(
        store
            .recover_job(
                &claimed.job.id,
                Some("dead"),
                &snapex::store::Recovery::Completed { parts }
            )
            .await
            .unwrap()
    );
    let j = store
        .get_export_job_by_id(&claimed.job.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(j.state, JobState::Successful);
    assert_eq!((j.exported_collections(), j.total_collections()), (4, 4));
    assert!(j.state_reason.is_none());
    assert!(
        !store
            .heartbeat(&claimed.job.id, "dead", Duration::seconds(30))
            .await
            .unwrap()
    );
}

async fn a_node_that_lost_its_job_cannot_overwrite_the_verdict(store: &Store) {
    let (_, g) = project(store).await;
    let c = cluster(store, &g, "c", &["rs0"]).await;
    let s = snapshot(store, &c).await;
    job(store, &c, &s).await.unwrap();
    let claimed = store
        .admit_next_job("slow", 5, Duration::seconds(30))
        .await
        .unwrap()
        .unwrap();
    store
        .fail_interrupted_jobs(snapex::store::now(), Some("slow"))
        .await
        .unwrap();
    assert!(
        !store
            .heartbeat(&claimed.job.id, "slow", Duration::seconds(30))
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish_part(&claimed.job.id, "rs0", "slow", "{}")
            .await
            .unwrap()
    );
    let reason = StateReason {
        error_code: "X".into(),
        message: "late".into(),
    };
    assert!(
        !store
            .finish_job(&claimed.job.id, JobState::Successful, Some(&reason))
            .await
            .unwrap()
    );
    let j = store
        .get_export_job_by_id(&claimed.job.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(j.state, JobState::Failed);
}

async fn cancelling_a_queued_job_removes_it_from_the_queue(store: &Store) {
    let (_, g) = project(store).await;
    let c = cluster(store, &g, "c", &["rs0"]).await;
    let s = snapshot(store, &c).await;
    let j = job(store, &c, &s).await.unwrap();
    let after = store.request_cancel(&j.id).await.unwrap().unwrap();
    assert_eq!(after.state, JobState::Cancelled);
    // nothing else is queued in this database's other tests' jobs for this cluster
    let admitted = store
        .admit_next_job("n", 100, Duration::seconds(30))
        .await
        .unwrap();
    assert!(admitted.is_none_or(|a| a.job.id != j.id));
}

async fn backup_schedule_upsert_and_policy_lookup(store: &Store) {
    let (_, g) = project(store).await;
    let c = cluster(store, &g, "c", &["rs0"]).await;
    let bucket = store
        .create_export_bucket(
            &g,
            NewExportBucket {
                cloud_provider: snapex::store::CloudProvider::Filesystem,
                bucket_name: "b".into(),
                role_id: None,
                service_url: None,
                region: None,
                require_private_networking: false,
            },
        )
        .await
        .unwrap();
    assert!(
        !store
            .export_bucket_used_by_policy(&g, &bucket.id)
            .await
            .unwrap()
    );
    let doc = serde_json::json!({"autoExportEnabled": true, "export": {"exportBucketId": bucket.id, "frequencyType": "monthly"}});
    store.put_backup_schedule(&g, &c.id, &doc).await.unwrap();
    store.put_backup_schedule(&g, &c.id, &doc).await.unwrap();
    assert_eq!(
        store
            .get_backup_schedule(&c.id)
            .await
            .unwrap()
            .unwrap()
            .document,
        doc
    );
    assert!(
        store
            .export_bucket_used_by_policy(&g, &bucket.id)
            .await
            .unwrap()
    );
}

/// The admin CLI writes while `serve` runs: two stores on one SQLite file, writing at once.
#[tokio::test]
async fn two_processes_can_write_one_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = Store::open_in_data_dir(dir.path()).await.unwrap();
    let b = Store::open_in_data_dir(dir.path()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            s.create_org(&format!("org{i}")).await.unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(a.list_orgs().await.unwrap().len(), 40);
    // and the file reopens with its migrations already applied
    drop((a, b));
    let c = Store::open_in_data_dir(dir.path()).await.unwrap();
    assert_eq!(c.list_orgs().await.unwrap().len(), 40);
}

/// Two jobs of one bucket can never share an export prefix.
#[tokio::test]
async fn a_prefix_is_used_once_per_bucket() {
    let (_dir, store) = sqlite_store().await;
    let (_, g) = project(&store).await;
    let c = cluster(&store, &g, "c", &["rs0"]).await;
    let s1 = snapshot(&store, &c).await;
    let s2 = snapshot(&store, &c).await;
    let bucket = snapex::store::new_id();
    let mk = |s: &snapex::store::Snapshot| NewExportJob {
        group_id: c.group_id.clone(),
        cluster_id: c.id.clone(),
        cluster_name: c.name.clone(),
        snapshot_id: s.id.clone(),
        export_bucket_id: bucket.clone(),
        created_at: snapex::store::now(),
        custom_data: vec![],
        prefix: "exported_snapshots/same".into(),
        replica_sets: vec!["rs0".into()],
        namespaces: Default::default(),
        export_format: None,
    };
    store.create_export_job(mk(&s1)).await.unwrap();
    assert!(matches!(
        store.create_export_job(mk(&s2)).await,
        Err(StoreError::PrefixTaken { .. })
    ));
}

/// The catalog's exactly-once rule rests on the table's key: of many claims of one backup at
/// once (as nodes listing in the same instant make), exactly one wins; the row then names its
/// snapshot and, once gone, says when.
async fn a_backup_is_claimed_by_exactly_one_of_many_concurrent_claims(store: &Store) {
    let (_, group) = project(store).await;
    let c = cluster(store, &group, "c1", &["rs0"]).await;
    let url = "s3://backups/nightly/2026-11-01";
    let claims = (0..8).map(|n| {
        let store = store.clone();
        let (group, cluster_id) = (group.clone(), c.id.clone());
        async move {
            store
                .claim_catalog_backup(&group, &cluster_id, "nightly", url, &format!("node-{n}"))
                .await
                .unwrap()
        }
    });
    let won = futures::future::join_all(claims).await;
    assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    let s = snapshot(store, &c).await;
    store.set_catalog_snapshot(&c.id, url, &s.id).await.unwrap();
    let row = store
        .catalog_backup_of_snapshot(&s.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.backup_url, url);
    assert_eq!(row.gone_at, None);
    assert!(store.mark_catalog_gone(&c.id, url).await.unwrap());
    assert!(
        !store.mark_catalog_gone(&c.id, url).await.unwrap(),
        "gone once"
    );
    let rows = store.list_catalog_backups(&c.id, "nightly").await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].gone_at.is_some());
    // A released claim (a failed import) can be claimed again; a registered one cannot.
    assert!(
        !store
            .claim_catalog_backup(&group, &c.id, "nightly", url, "late")
            .await
            .unwrap()
    );
    let other = "s3://backups/nightly/2026-11-02";
    assert!(
        store
            .claim_catalog_backup(&group, &c.id, "nightly", other, "a")
            .await
            .unwrap()
    );
    store.release_catalog_claim(&c.id, other).await.unwrap();
    assert!(
        store
            .claim_catalog_backup(&group, &c.id, "nightly", other, "b")
            .await
            .unwrap()
    );
    // An abandoned claim (no snapshot) is taken over by one node of many, and only from the
    // claim time it was seen with.
    let seen = store.list_catalog_backups(&c.id, "nightly").await.unwrap();
    let abandoned = seen.iter().find(|r| r.backup_url == other).unwrap();
    assert_eq!(abandoned.claimed_by, "b");
    let seen_at = abandoned.claimed_at;
    let takers = (0..4).map(|n| {
        let store = store.clone();
        let cluster_id = c.id.clone();
        async move {
            store
                .take_over_catalog_claim(&cluster_id, other, &format!("taker-{n}"), seen_at)
                .await
                .unwrap()
        }
    });
    let took = futures::future::join_all(takers).await;
    assert_eq!(took.iter().filter(|t| **t).count(), 1, "{took:?}");
    // A registered backup is never taken over.
    let registered = store
        .catalog_backup_of_snapshot(&s.id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !store
            .take_over_catalog_claim(&c.id, url, "d", registered.claimed_at)
            .await
            .unwrap()
    );
}
