//! A ServiceNow simulator: the Table API and `/oauth_token.do` over seeded, realistic GRC
//! data (frameworks, requirements with and without controls, controls with a year of
//! indicator results, risks with inherent and residual scores, issues), with optional
//! throttling (429 + Retry-After), latency, tables the user may not read, and record churn
//! (updates, creations, deletions while clients read). `complianceiq snow-sim` serves it;
//! tests hold it in-process and compare what a sync stored with [`Simulator::ids`].

mod generate;
mod server;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crate::tables::{self, Table};

/// A record: field to value, as ServiceNow stores them (text; references as sys_ids).
pub type Record = BTreeMap<&'static str, String>;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Seed of the generated data: the same seed and size give the same records.
    pub seed: u64,
    /// Number of controls; every other table is sized from it.
    pub controls: usize,
    /// Basic-auth user and password the instance accepts.
    pub username: String,
    /// Its password.
    pub password: String,
    /// OAuth client accepted by `/oauth_token.do`.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// Lifetime of issued OAuth tokens.
    pub token_lifetime: Duration,
    /// Answer every n-th Table API request with 429 (0: never).
    pub throttle_every: u64,
    /// Answer every n-th Table API request with 503 (0: never), as a node restart would.
    pub fail_every: u64,
    /// The Retry-After sent with a 429, seconds.
    pub retry_after_seconds: u64,
    /// Added to every answer.
    pub latency: Duration,
    /// Tables the user may not read (403).
    pub denied_tables: Vec<String>,
    /// Records changed per second by [`Simulator::churn_forever`].
    pub churn_per_second: f64,
    /// Writable tables the user may read but not write (403 on POST, PATCH and DELETE).
    pub write_denied_tables: Vec<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            controls: 200,
            username: "complianceiq".into(),
            password: "complianceiq-sim".into(),
            client_id: "complianceiq-client".into(),
            client_secret: "complianceiq-sim-secret".into(),
            token_lifetime: Duration::from_secs(1800),
            throttle_every: 0,
            fail_every: 0,
            retry_after_seconds: 1,
            latency: Duration::ZERO,
            denied_tables: Vec::new(),
            churn_per_second: 0.0,
            write_denied_tables: Vec::new(),
        }
    }
}

/// What one round of churn changed, by table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Churn {
    /// Records given new values (and a new `sys_updated_on`).
    pub updated: BTreeMap<&'static str, BTreeSet<String>>,
    /// Records created.
    pub created: BTreeMap<&'static str, BTreeSet<String>>,
    /// Records deleted.
    pub deleted: BTreeMap<&'static str, BTreeSet<String>>,
}

/// splitmix64: small, fast, and the same everywhere for a seed.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() <= p
    }

    pub(crate) fn sys_id(&mut self) -> String {
        format!("{:016x}{:016x}", self.next(), self.next())
    }
}

pub(crate) struct State {
    pub(crate) tables: BTreeMap<&'static str, BTreeMap<String, Record>>,
    pub(crate) rng: Rng,
    pub(crate) sequence: u64,
    /// Counts write locks taken: a sorted order computed at another generation is stale.
    pub(crate) generation: u64,
}

/// A table's sys_ids sorted by a query's order, as of a state generation.
type SortedIds = (u64, Arc<Vec<String>>);
/// A table and the ORDERBY fields (descending or not) of a sorted order.
type OrderKey = (String, Vec<(String, bool)>);

/// The simulated instance.
pub struct Simulator {
    pub(crate) config: SimConfig,
    pub(crate) state: RwLock<State>,
    pub(crate) requests: AtomicU64,
    pub(crate) tokens: Mutex<HashMap<String, Instant>>,
    /// Sorted orders by (table, ORDERBY fields), so a page costs a binary search and the
    /// page, not a sort of the table (a sync pages through a large table hundreds of times).
    pub(crate) orders: Mutex<HashMap<OrderKey, SortedIds>>,
    /// Records written through the Table API (`sp_widget`): table → sys_id → columns.
    pub(crate) written: Mutex<BTreeMap<String, WrittenTable>>,
    /// The password now in force, when an administrator changed it.
    pub(crate) changed_password: Mutex<Option<String>>,
    /// Writes (POST, PATCH, DELETE) answered.
    pub(crate) writes: AtomicU64,
}

/// A writable table's records by sys_id.
pub(crate) type WrittenTable = BTreeMap<String, serde_json::Map<String, serde_json::Value>>;

/// Seconds since the epoch, now.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl Simulator {
    /// Generates the instance's data.
    pub fn new(config: SimConfig) -> Self {
        let state = generate::generate(config.seed, config.controls, now());
        Self {
            config,
            state: RwLock::new(state),
            requests: AtomicU64::new(0),
            tokens: Mutex::new(HashMap::new()),
            orders: Mutex::new(HashMap::new()),
            written: Mutex::new(BTreeMap::new()),
            changed_password: Mutex::new(None),
            writes: AtomicU64::new(0),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        let mut state = self.state.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        state.generation += 1;
        state
    }

    /// `table`'s sys_ids in the order of `order_by` (then sys_id), as of `state`, from the
    /// first whose first order field is at least `bound` (when the query bounds it): the ids
    /// and where that first one is. A cached order serves while no write has happened. Without
    /// one, a bound that leaves few records (an incremental sync's "changed since") gets just
    /// those sorted, not the table: after a change, a sort of a million-record table per
    /// query made the simulator the bottleneck of incremental syncs.
    pub(crate) fn sorted_from(
        &self,
        state: &State,
        table: &str,
        order_by: &[(String, bool)],
        bound: Option<(&str, &str)>,
    ) -> (Arc<Vec<String>>, usize) {
        let empty = BTreeMap::new();
        let records = state.tables.get(table).unwrap_or(&empty);
        let field = |id: &String, name: &str| records.get(id).and_then(|record| record.get(name)).map(String::as_str);
        let start_in = |ids: &[String]| match bound {
            Some((first, bound)) => ids.partition_point(|id| field(id, first).unwrap_or("") < bound),
            None => 0,
        };
        let key = (table.to_string(), order_by.to_vec());
        let mut orders = self.orders.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((generation, ids)) = orders.get(&key)
            && *generation == state.generation
        {
            return (ids.clone(), start_in(ids));
        }
        let compare = |a: &&String, b: &&String| {
            let (x, y) = (&records[*a], &records[*b]);
            for (field, descending) in order_by {
                let (x, y) = (x.get(field.as_str()), y.get(field.as_str()));
                let ordering = if *descending { y.cmp(&x) } else { x.cmp(&y) };
                if ordering.is_ne() {
                    return ordering;
                }
            }
            a.cmp(b)
        };
        if let Some((first, bound)) = bound {
            let mut few: Vec<&String> = records.keys().filter(|id| field(id, first).unwrap_or("") >= bound).collect();
            if few.len() * 8 < records.len() {
                few.sort_by(compare);
                return (Arc::new(few.into_iter().cloned().collect()), 0);
            }
        }
        let mut ids: Vec<&String> = records.keys().collect();
        ids.sort_by(compare);
        let ids = Arc::new(ids.into_iter().cloned().collect::<Vec<_>>());
        orders.insert(key, (state.generation, ids.clone()));
        let start = start_in(&ids);
        (ids, start)
    }

    /// The sys_ids of a table now.
    pub fn ids(&self, table: &str) -> BTreeSet<String> {
        self.read().tables.get(table).map(|records| records.keys().cloned().collect()).unwrap_or_default()
    }

    /// Record counts per table.
    pub fn counts(&self) -> BTreeMap<&'static str, usize> {
        self.read().tables.iter().map(|(table, records)| (*table, records.len())).collect()
    }

    /// A record as stored.
    pub fn record(&self, table: &str, sys_id: &str) -> Option<Record> {
        self.read().tables.get(table)?.get(sys_id).cloned()
    }

    /// Table API requests served so far (throttled ones included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Changes `changes` records: about 70 % updates, 20 % creations (controls, issues,
    /// indicator results, risk-control links) and 10 % deletions (issues, indicator results,
    /// risk-control links), each stamped
    /// with the current second.
    pub fn churn(&self, changes: usize) -> Churn {
        let mut churn = Churn::default();
        let stamp = crate::datetime::format(now());
        let mut state = self.write();
        for _ in 0..changes {
            let roll = state.rng.below(10);
            if roll < 7 {
                let table = [tables::CONTROLS, tables::RISKS, tables::ISSUES, tables::INDICATORS][state.rng.below(4)];
                if let Some((id, record)) = pick(&mut state, table) {
                    let mut record = record;
                    generate::mutate(&mut state.rng, table, &mut record);
                    record.insert("sys_updated_on", stamp.clone());
                    state.tables.entry(table.name).or_default().insert(id.clone(), record);
                    churn.updated.entry(table.name).or_default().insert(id);
                }
            } else if roll < 9 {
                let table = [tables::CONTROLS, tables::ISSUES, tables::INDICATOR_RESULTS, tables::RISK_CONTROLS]
                    [state.rng.below(4)];
                if let Some((id, _)) = generate::create(&mut state, table, &stamp) {
                    churn.created.entry(table.name).or_default().insert(id);
                }
            } else {
                let table = [tables::ISSUES, tables::INDICATOR_RESULTS, tables::RISK_CONTROLS][state.rng.below(3)];
                if let Some((id, _)) = pick(&mut state, table) {
                    state.tables.entry(table.name).or_default().remove(&id);
                    churn.deleted.entry(table.name).or_default().insert(id);
                }
            }
        }
        // Within one round: created then deleted was never there; created or deleted wins
        // over updated.
        let mut vanished: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
        for (table, deleted) in &churn.deleted {
            if let Some(created) = churn.created.get(table) {
                vanished.insert(table, created.intersection(deleted).cloned().collect());
            }
        }
        let within = |sets: &BTreeMap<&'static str, BTreeSet<String>>, table: &str, id: &String| {
            sets.get(table).is_some_and(|set| set.contains(id))
        };
        for (table, updated) in churn.updated.iter_mut() {
            updated.retain(|id| !within(&churn.created, table, id) && !within(&churn.deleted, table, id));
        }
        for (table, gone) in &vanished {
            churn.created.entry(table).or_default().retain(|id| !gone.contains(id));
            churn.deleted.entry(table).or_default().retain(|id| !gone.contains(id));
        }
        churn
    }

    /// Edits a record as a person in ServiceNow would: sets `fields`, counts the modification
    /// and stamps it with the current second. False when there is no such record.
    pub fn edit(&self, table: &str, sys_id: &str, fields: &[(&'static str, &str)]) -> bool {
        let stamp = crate::datetime::format(now());
        let mut state = self.write();
        let Some(record) = state.tables.get_mut(table).and_then(|records| records.get_mut(sys_id)) else {
            return false;
        };
        for (field, value) in fields {
            record.insert(field, value.to_string());
        }
        let count: u64 = record.get("sys_mod_count").and_then(|count| count.parse().ok()).unwrap_or(0);
        record.insert("sys_mod_count", (count + 1).to_string());
        record.insert("sys_updated_on", stamp);
        true
    }

    /// Deletes a record as a person in ServiceNow would. False when there is no such record.
    pub fn delete(&self, table: &str, sys_id: &str) -> bool {
        self.write().tables.get_mut(table).and_then(|records| records.remove(sys_id)).is_some()
    }

    /// Churns at the configured rate until `stop`.
    pub async fn churn_forever(&self, stop: tokio_util::sync::CancellationToken) {
        if self.config.churn_per_second <= 0.0 {
            return;
        }
        let mut ticks = tokio::time::interval(Duration::from_millis(100));
        let mut owed = 0.0;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticks.tick() => {}
            }
            owed += self.config.churn_per_second / 10.0;
            let now = owed.floor();
            owed -= now;
            if now >= 1.0 {
                self.churn(now as usize);
            }
        }
    }
}

fn pick(state: &mut State, table: Table) -> Option<(String, Record)> {
    let records = state.tables.get(table.name)?;
    if records.is_empty() {
        return None;
    }
    let index = state.rng.below(records.len());
    records.iter().nth(index).map(|(id, record)| (id.clone(), record.clone()))
}

pub use server::{serve, serve_tls};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_instance_and_sizes_follow_the_controls() {
        let config = SimConfig { controls: 50, ..SimConfig::default() };
        let (a, b) = (Simulator::new(config.clone()), Simulator::new(config));
        assert_eq!(a.ids("sn_compliance_control"), b.ids("sn_compliance_control"));
        let counts = a.counts();
        assert_eq!(counts["sn_compliance_control"], 50);
        for table in tables::ALL {
            assert!(counts[table.name] > 0, "{} is empty", table.name);
        }
        // Some requirements have no control: the gap analysis needs them.
        let state = a.read();
        let covered: BTreeSet<&String> =
            state.tables["sn_compliance_control"].values().filter_map(|control| control.get("content")).collect();
        assert!(covered.len() < state.tables["sn_compliance_policy_statement"].len());
        // A year of indicator results.
        let dates: BTreeSet<&str> = state.tables["sn_grc_indicator_result"]
            .values()
            .filter_map(|result| result.get("collection_date").map(|d| &d[..7]))
            .collect();
        assert!(dates.len() >= 12, "{dates:?}");
    }

    /// The Table API drops an unknown column from `sysparm_fields` without a word; a name the
    /// sync gets wrong must show here, against the instance's own columns.
    #[test]
    fn every_column_the_sync_asks_for_is_one_the_instance_has() {
        let simulator = Simulator::new(SimConfig { controls: 50, ..SimConfig::default() });
        let state = simulator.read();
        for table in tables::ALL {
            let columns: BTreeSet<&str> =
                state.tables[table.name].values().flat_map(|record| record.keys().copied()).collect();
            for field in table.field_list().split(',') {
                assert!(columns.contains(field), "{}.{field} is not a column of the instance", table.name);
            }
            for (field, target) in table.references() {
                assert_eq!(generate::referenced_table(table.name, field), Some(target), "{}.{field}", table.name);
            }
        }
        // Some risks are mitigated by no control, some by several.
        let mut per_risk: BTreeMap<&String, usize> = state.tables["sn_risk_risk"].keys().map(|id| (id, 0)).collect();
        for link in state.tables["sn_risk_m2m_risk_control"].values() {
            *per_risk.get_mut(&link["sn_risk_risk"]).expect("a link names a risk") += 1;
        }
        assert!(per_risk.values().any(|count| *count == 0) && per_risk.values().any(|count| *count > 1));
    }

    #[test]
    fn churn_changes_creates_and_deletes_with_fresh_timestamps() {
        let simulator = Simulator::new(SimConfig { controls: 30, ..SimConfig::default() });
        let before = simulator.ids("sn_grc_issue");
        let churn = simulator.churn(200);
        assert!(!churn.updated.is_empty() && !churn.created.is_empty() && !churn.deleted.is_empty(), "{churn:?}");
        let after = simulator.ids("sn_grc_issue");
        for id in churn.deleted.get("sn_grc_issue").into_iter().flatten() {
            assert!(before.contains(id) && !after.contains(id));
        }
        let stamp = crate::datetime::format(now());
        for (table, ids) in &churn.updated {
            for id in ids {
                let updated = simulator.record(table, id).unwrap()["sys_updated_on"].clone();
                assert!(updated.as_str() <= stamp.as_str() && updated.as_str() >= &stamp[..10], "{updated}");
            }
        }
    }
}
