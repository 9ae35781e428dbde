//! Deterministic sample dumps for tests and benchmarks.
//!
//! [`write_sample_dump`] writes a mongodump directory (`prelude.json`, several databases, each
//! collection with a `.metadata.json` carrying indexes and a uuid, an empty collection, a view,
//! a `system.*` collection, `system.js`, and a time-series collection written as mongodump
//! writes one from a 5.0–7.x server: its metadata and its version-1 buckets in
//! `system.buckets.<name>.bson`) whose documents look like application data (orders,
//! customers, products, events; ~1–2 KB each, nested documents and arrays, non-ASCII and
//! escape-worthy strings) and that together use every BSON type, including the deprecated ones
//! and binary subtypes 0–8 and 0x80 (`analytics.legacy` carries the rare ones; its first
//! document has all of them, so even a tiny dump covers every type).
//!
//! The same [`SampleSpec`] always gives byte-identical files: documents are hand-encoded from
//! a SplitMix64 stream seeded by `seed` (no dependence on `rand`'s algorithms or the clock).
//! Each document is encoded into one reused buffer and written through a buffered file, so
//! memory stays constant whatever `target_bytes` is.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct SampleSpec {
    /// Approximate total size of the `.bson` files.
    pub target_bytes: u64,
    pub seed: u64,
}

/// What was generated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampleStats {
    /// Documents in the `.bson` files (time-series buckets counted as one each).
    pub documents: u64,
    pub bson_bytes: u64,
    /// Measurements in the time-series buckets (what an export writes for them).
    pub measurements: u64,
    /// Every collection written with a `.bson` file (views have none; the time-series collection's
    /// file is its buckets'), sorted by (db, name).
    pub collections: Vec<SampleCollection>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleCollection {
    pub db: String,
    pub name: String,
    pub documents: u64,
    pub bson_bytes: u64,
}

/// The server version written to `prelude.json`.
pub const SAMPLE_SERVER_VERSION: &str = "7.0.16";

#[derive(Clone, Copy)]
enum Shape {
    Orders,
    Customers,
    Products,
    Events,
    Legacy,
}

/// (db, collection, share of target_bytes, shape); shares add up to 1.
const DATA_COLLECTIONS: &[(&str, &str, f64, Shape)] = &[
    ("analytics", "events", 0.22, Shape::Events),
    ("analytics", "legacy", 0.03, Shape::Legacy),
    ("shop", "customers", 0.25, Shape::Customers),
    ("shop", "orders", 0.38, Shape::Orders),
    ("shop", "products", 0.12, Shape::Products),
];

const BUFFER: usize = 1 << 20;

/// Writes a sample dump into `dir` (created if needed). See the module documentation.
pub fn write_sample_dump(dir: &Path, spec: &SampleSpec) -> io::Result<SampleStats> {
    fs::create_dir_all(dir)?;
    fs::write(
        dir.join("prelude.json"),
        format!(r#"{{"ServerVersion":"{SAMPLE_SERVER_VERSION}","ToolVersion":"100.10.0"}}"#),
    )?;
    let mut rng = Rng::new(spec.seed);
    let mut stats = SampleStats::default();
    let mut enc = Encoder::default();

    for &(db, name, share, shape) in DATA_COLLECTIONS {
        let budget = (spec.target_bytes as f64 * share) as u64;
        let mut coll_rng = rng.fork();
        let path = dir.join(db).join(format!("{name}.bson"));
        fs::create_dir_all(dir.join(db))?;
        let mut out = BufWriter::with_capacity(BUFFER, File::create(&path)?);
        let mut written = 0u64;
        let mut documents = 0u64;
        while documents == 0 || written < budget {
            enc.clear();
            match shape {
                Shape::Orders => order(&mut enc, &mut coll_rng, documents),
                Shape::Customers => customer(&mut enc, &mut coll_rng, documents),
                Shape::Products => product(&mut enc, &mut coll_rng, documents),
                Shape::Events => event(&mut enc, &mut coll_rng, documents),
                Shape::Legacy => legacy(&mut enc, &mut coll_rng, documents),
            }
            out.write_all(&enc.buf)?;
            written += enc.buf.len() as u64;
            documents += 1;
        }
        out.flush()?;
        write_metadata(
            dir,
            db,
            name,
            &metadata_json(name, &indexes_for(shape), &mut rng),
        )?;
        stats.collections.push(SampleCollection {
            db: db.into(),
            name: name.into(),
            documents,
            bson_bytes: written,
        });
    }

    // An empty collection: 0-byte .bson and its metadata.
    File::create(dir.join("shop").join("archived_orders.bson"))?;
    write_metadata(
        dir,
        "shop",
        "archived_orders",
        &metadata_json("archived_orders", "", &mut rng),
    )?;
    stats.collections.push(SampleCollection {
        db: "shop".into(),
        name: "archived_orders".into(),
        documents: 0,
        bson_bytes: 0,
    });

    // A view: metadata only.
    write_metadata(
        dir,
        "shop",
        "big_orders",
        r#"{"options":{"viewOn":"orders","pipeline":[{"$match":{"total":{"$gt":{"$numberDecimal":"500"}}}}]},"indexes":[],"collectionName":"big_orders","type":"view"}"#,
    )?;

    // system.js is exported like any collection; system.version is a system collection.
    let mut small = |db: &str, name: &str, docs: &[Vec<u8>], rng: &mut Rng| -> io::Result<()> {
        fs::create_dir_all(dir.join(db))?;
        let bytes: Vec<u8> = docs.concat();
        fs::write(dir.join(db).join(format!("{name}.bson")), &bytes)?;
        write_metadata(dir, db, name, &metadata_json(name, "", rng))?;
        stats.collections.push(SampleCollection {
            db: db.into(),
            name: name.into(),
            documents: docs.len() as u64,
            bson_bytes: bytes.len() as u64,
        });
        Ok(())
    };
    let mut js = Encoder::default();
    js.begin();
    js.string("_id", "discountFor");
    js.code_w_scope(
        "value",
        "function (total) { return total > limit ? total * rate : 0; }",
        |e| {
            e.int32("limit", 500);
            e.double("rate", 0.05);
        },
    );
    js.end();
    let js_one = js.buf.clone();
    js.clear();
    js.begin();
    js.string("_id", "slugify");
    js.code(
        "value",
        "function (s) { return s.toLowerCase().replace(/[^a-z0-9]+/g, \"-\"); }",
    );
    js.end();
    small("shop", "system.js", &[js_one, js.buf.clone()], &mut rng)?;
    js.clear();
    js.begin();
    js.string("_id", "featureCompatibilityVersion");
    js.string("version", "7.0");
    js.end();
    small("admin", "system.version", &[js.buf.clone()], &mut rng)?;

    // Last, so that the other collections stay as they were before it existed.
    let budget = (spec.target_bytes as f64 * TIME_SERIES_SHARE) as u64;
    let (collection, measurements) = time_series(dir, budget, &mut rng.fork())?;
    stats.collections.push(collection);
    stats.measurements = measurements;

    stats
        .collections
        .sort_by(|a, b| (&a.db, &a.name).cmp(&(&b.db, &b.name)));
    stats.documents = stats.collections.iter().map(|c| c.documents).sum();
    stats.bson_bytes = stats.collections.iter().map(|c| c.bson_bytes).sum();
    Ok(stats)
}

/// Share of `target_bytes` for the time-series collection, on top of the others.
const TIME_SERIES_SHARE: f64 = 0.04;

/// `telemetry.sensor_readings`: time field `ts`, meta field `sensor`; buckets of one sensor and
/// one hour (granularity seconds), a reading every five seconds or so, `humidity` missing from
/// some readings, every measurement with its `_id`, `control.min`/`max` as the server keeps
/// them (the time field's minimum is the bucket's rounded start). Returns the collection's
/// entry and its number of measurements.
fn time_series(dir: &Path, budget: u64, rng: &mut Rng) -> io::Result<(SampleCollection, u64)> {
    const SENSORS: &[(&str, &str, i32)] = &[
        ("boiler-1", "lyon", 0),
        ("boiler-2", "lyon", 0),
        ("chiller-1", "lyon", 3),
        ("pump-7", "grenoble", -1),
    ];
    const START_MS: i64 = 1_786_320_000_000; // 2026-08-10T00:00:00Z
    // A database of its own, sorted last: the collections before it export as they always did.
    let (db, name) = ("telemetry", "sensor_readings");
    fs::create_dir_all(dir.join(db))?;
    let path = dir.join(db).join(format!("system.buckets.{name}.bson"));
    let mut out = BufWriter::with_capacity(BUFFER, File::create(&path)?);
    let mut enc = Encoder::default();
    let (mut buckets, mut measurements, mut written) = (0u64, 0u64, 0u64);
    while buckets == 0 || written < budget {
        let (sensor, site, floor) = SENSORS[(buckets % SENSORS.len() as u64) as usize];
        let start = START_MS + (buckets / SENSORS.len() as u64) as i64 * 3_600_000;
        let count = 50 + rng.below(670) as usize;
        let times: Vec<i64> = (0..count as i64)
            .map(|i| start + i * 5000 + rng.below(3000) as i64)
            .collect();
        let ids: Vec<[u8; 12]> = times
            .iter()
            .map(|ms| {
                let mut oid = [0u8; 12];
                oid[..4].copy_from_slice(&((ms / 1000) as u32).to_be_bytes());
                oid[4..].copy_from_slice(&rng.next().to_le_bytes());
                oid
            })
            .collect();
        let mut tenths = 180 + rng.below(60) as i64;
        let temperatures: Vec<f64> = (0..count)
            .map(|_| {
                tenths += rng.below(5) as i64 - 2;
                tenths as f64 / 10.0
            })
            .collect();
        let humidity: Vec<Option<i32>> = (0..count)
            .map(|_| (rng.below(7) != 0).then(|| 30 + rng.below(40) as i32))
            .collect();
        let keys: Vec<String> = (0..count).map(|i| i.to_string()).collect();
        let min_max = |e: &mut Encoder, min: bool| {
            let pick = |a: f64, b: f64| if min { a.min(b) } else { a.max(b) };
            let id = if min {
                ids.iter().min()
            } else {
                ids.iter().max()
            };
            if let Some(id) = id {
                e.object_id_bytes("_id", id);
            }
            e.date("ts", if min { start } else { times[count - 1] });
            e.double(
                "temperature",
                temperatures.iter().copied().fold(temperatures[0], pick),
            );
            let present = humidity.iter().flatten().copied();
            let h = if min { present.min() } else { present.max() };
            if let Some(h) = h {
                e.int32("humidity", h);
            }
        };
        enc.clear();
        enc.begin();
        let mut bucket_id = [0u8; 12];
        bucket_id[..4].copy_from_slice(&((start / 1000) as u32).to_be_bytes());
        bucket_id[4..].copy_from_slice(&rng.next().to_le_bytes());
        enc.object_id_bytes("_id", &bucket_id);
        enc.begin_doc("control");
        enc.int32("version", 1);
        enc.begin_doc("min");
        min_max(&mut enc, true);
        enc.end();
        enc.begin_doc("max");
        min_max(&mut enc, false);
        enc.end();
        enc.end();
        enc.begin_doc("meta");
        enc.string("id", sensor);
        enc.string("site", site);
        enc.int32("floor", floor);
        enc.end();
        enc.begin_doc("data");
        enc.begin_doc("ts");
        for (key, ms) in keys.iter().zip(&times) {
            enc.date(key, *ms);
        }
        enc.end();
        enc.begin_doc("_id");
        for (key, id) in keys.iter().zip(&ids) {
            enc.object_id_bytes(key, id);
        }
        enc.end();
        enc.begin_doc("temperature");
        for (key, t) in keys.iter().zip(&temperatures) {
            enc.double(key, *t);
        }
        enc.end();
        enc.begin_doc("humidity");
        for (key, h) in keys.iter().zip(&humidity) {
            if let Some(h) = h {
                enc.int32(key, *h);
            }
        }
        enc.end();
        enc.end();
        enc.end();
        out.write_all(&enc.buf)?;
        written += enc.buf.len() as u64;
        buckets += 1;
        measurements += count as u64;
    }
    out.flush()?;
    write_metadata(
        dir,
        db,
        name,
        r#"{"options":{"timeseries":{"timeField":"ts","metaField":"sensor","granularity":"seconds","bucketMaxSpanSeconds":{"$numberInt":"3600"}}},"indexes":[{"v":{"$numberInt":"2"},"key":{"sensor":{"$numberInt":"1"},"ts":{"$numberInt":"1"}},"name":"sensor_1_ts_1"}],"collectionName":"sensor_readings","type":"timeseries"}"#,
    )?;
    let collection = SampleCollection {
        db: db.into(),
        name: name.into(),
        documents: buckets,
        bson_bytes: written,
    };
    Ok((collection, measurements))
}

fn write_metadata(dir: &Path, db: &str, name: &str, json: &str) -> io::Result<()> {
    fs::write(dir.join(db).join(format!("{name}.metadata.json")), json)
}

fn indexes_for(shape: Shape) -> String {
    let ix = |key: &str, name: &str, extra: &str| {
        format!(r#",{{"v":{{"$numberInt":"2"}},"key":{{{key}}},"name":"{name}"{extra}}}"#)
    };
    let one = r#"{"$numberInt":"1"}"#;
    let minus = r#"{"$numberInt":"-1"}"#;
    match shape {
        Shape::Orders => {
            ix(
                &format!(r#""customerId":{one},"createdAt":{minus}"#),
                "customerId_1_createdAt_-1",
                "",
            ) + &ix(
                &format!(r#""orderNo":{one}"#),
                "orderNo_1",
                r#","unique":true"#,
            )
        }
        Shape::Customers => ix(&format!(r#""email":{one}"#), "email_1", r#","unique":true"#),
        Shape::Products => ix(
            r#""name":"text","description":"text""#,
            "name_text_description_text",
            r#","weights":{"name":{"$numberInt":"10"},"description":{"$numberInt":"1"}},"default_language":"english","language_override":"language","textIndexVersion":{"$numberInt":"3"}"#,
        ),
        Shape::Events => ix(
            &format!(r#""ts":{one}"#),
            "ts_1",
            r#","expireAfterSeconds":{"$numberInt":"7776000"}"#,
        ),
        Shape::Legacy => String::new(),
    }
}

fn metadata_json(name: &str, extra_indexes: &str, rng: &mut Rng) -> String {
    let uuid = format!("{:016x}{:016x}", rng.next(), rng.next());
    format!(
        r#"{{"indexes":[{{"v":{{"$numberInt":"2"}},"key":{{"_id":{{"$numberInt":"1"}}}},"name":"_id_"}}{extra_indexes}],"uuid":"{uuid}","collectionName":"{name}","type":"collection"}}"#
    )
}

// ---------------------------------------------------------------------------------------------
// Documents

const WORDS: &[&str] = &[
    "the",
    "quick",
    "delivery",
    "package",
    "arrived",
    "before",
    "noon",
    "customer",
    "asked",
    "about",
    "refund",
    "policy",
    "and",
    "warranty",
    "coverage",
    "for",
    "blue",
    "ceramic",
    "mug",
    "with",
    "gold",
    "rim",
    "please",
    "leave",
    "at",
    "front",
    "door",
    "if",
    "nobody",
    "answers",
    "gift",
    "wrap",
    "requested",
    "handle",
    "care",
    "fragile",
    "items",
    "inside",
    "order",
    "placed",
    "via",
    "mobile",
    "app",
    "coupon",
    "applied",
    "during",
    "checkout",
    "shipping",
    "address",
    "updated",
    "twice",
    "last",
    "week",
    "organic",
    "cotton",
    "shirt",
    "medium",
    "size",
    "runs",
    "small",
    "compared",
    "to",
    "previous",
    "batch",
    "premium",
    "leather",
    "wallet",
    "stainless",
    "steel",
    "water",
    "bottle",
    "insulated",
    "keeps",
    "drinks",
    "cold",
    "hours",
    "wireless",
    "headphones",
    "noise",
    "cancelling",
    "battery",
    "life",
    "charging",
    "case",
    "included",
    "café",
    "naïve",
    "résumé",
    "über",
    "straße",
    "smörgåsbord",
    "piñata",
];
const FIRST: &[&str] = &[
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Ava",
    "Mateo",
    "Sofía",
    "José",
    "Zoë",
    "Łukasz",
    "Amélie",
    "Søren",
    "Aiko",
    "Hiroshi",
    "Priya",
    "Arjun",
    "Fatima",
    "Omar",
    "Chloé",
    "François",
];
const LAST: &[&str] = &[
    "Smith",
    "García",
    "Müller",
    "Rossi",
    "Nowak",
    "O'Brien",
    "Nguyen",
    "Kim",
    "Tanaka",
    "Johansson",
    "Dubois",
    "Kowalski",
    "Silva",
    "Hernández",
    "Öztürk",
    "Patel",
    "Ivanova",
];
const CITIES: &[(&str, &str, f64, f64)] = &[
    ("New York", "US", 40.7128, -74.0060),
    ("São Paulo", "BR", -23.5505, -46.6333),
    ("Zürich", "CH", 47.3769, 8.5417),
    ("東京", "JP", 35.6762, 139.6503),
    ("Kraków", "PL", 50.0647, 19.9450),
    ("München", "DE", 48.1351, 11.5820),
    ("Montréal", "CA", 45.5019, -73.5674),
    ("Bengaluru", "IN", 12.9716, 77.5946),
    ("Cape Town", "ZA", -33.9249, 18.4241),
    ("Reykjavík", "IS", 64.1466, -21.9426),
];
const STREETS: &[&str] = &[
    "Main St",
    "Oak Avenue",
    "Rue de Rivoli",
    "Bahnhofstrasse",
    "Calle Mayor",
    "High Street",
    "Via Roma",
    "Ulica Długa",
    "Sunset Blvd",
    "King's Road",
];
const STATUSES: &[&str] = &[
    "pending",
    "paid",
    "shipped",
    "delivered",
    "cancelled",
    "refunded",
];
const EVENT_TYPES: &[&str] = &[
    "page_view",
    "click",
    "add_to_cart",
    "checkout_start",
    "purchase",
    "search",
    "login",
    "logout",
    "signup",
    "error",
];
const CATEGORIES: &[&str] = &[
    "kitchen",
    "apparel",
    "electronics",
    "outdoor",
    "books",
    "toys",
    "beauty",
    "garden",
];
const NOTES: &[&str] = &[
    "Leave at the \"side\" door",
    "Ring twice\nthen wait",
    "Path C:\\orders\\2024",
    "tab\tseparated\tnote",
    "bell \u{7} control \u{1} chars",
    "emoji 📦🚚 delivered",
    "",
];

/// 2024-01-01T00:00:00Z in milliseconds.
const BASE_MS: i64 = 1_704_067_200_000;
const YEAR_MS: u64 = 365 * 24 * 3600 * 1000;

fn order(e: &mut Encoder, r: &mut Rng, n: u64) {
    let created = BASE_MS + r.below(2 * YEAR_MS) as i64;
    e.begin();
    e.object_id("_id", r, created);
    e.int64("orderNo", 100_000_000 + n as i64);
    let t = created - r.below(YEAR_MS) as i64;
    e.object_id("customerId", r, t);
    e.string("status", r.pick(STATUSES));
    e.date("createdAt", created);
    e.date("updatedAt", created + r.below(30 * 24 * 3600 * 1000) as i64);
    let items = 1 + r.below(6) as usize;
    let mut total_cents = 0u64;
    e.begin_array("items");
    for i in 0..items {
        e.begin_doc(index_key(i));
        e.string("sku", &format!("SKU-{:06}", r.below(50_000)));
        let mut name = String::new();
        r.words(&mut name, 2, 4);
        e.string("name", &name);
        let qty = 1 + r.below(4) as i32;
        let cents = 199 + r.below(25_000);
        total_cents += cents * qty as u64;
        e.int32("qty", qty);
        e.decimal_cents("price", cents);
        e.double("discount", (r.below(30) as f64) / 100.0);
        e.end();
    }
    e.end();
    e.decimal_cents("total", total_cents);
    e.string("currency", if r.below(3) == 0 { "EUR" } else { "USD" });
    e.begin_doc("shipping");
    address(e, r);
    e.end();
    let mut notes = String::new();
    r.words(&mut notes, 30, 90);
    if r.below(10) == 0 {
        notes.push_str(r.pick(NOTES));
    }
    e.string("notes", &notes);
    e.bool("paid", r.below(4) != 0);
    if r.below(5) == 0 {
        e.null("giftMessage");
    } else {
        let mut g = String::new();
        r.words(&mut g, 5, 12);
        e.string("giftMessage", &g);
    }
    e.begin_array("tags");
    for i in 0..r.below(4) as usize {
        e.string(index_key(i), r.pick(CATEGORIES));
    }
    e.end();
    e.end();
}

fn address(e: &mut Encoder, r: &mut Rng) {
    let (city, country, lat, lon) = CITIES[r.below(CITIES.len() as u64) as usize];
    e.string("name", &format!("{} {}", r.pick(FIRST), r.pick(LAST)));
    e.string(
        "street",
        &format!("{} {}", 1 + r.below(999), r.pick(STREETS)),
    );
    e.string("city", city);
    e.string("zip", &format!("{:05}", r.below(100_000)));
    e.string("country", country);
    e.begin_doc("geo");
    e.string("type", "Point");
    e.begin_array("coordinates");
    e.double("0", lon + (r.below(1000) as f64 - 500.0) / 10_000.0);
    e.double("1", lat + (r.below(1000) as f64 - 500.0) / 10_000.0);
    e.end();
    e.end();
}

fn customer(e: &mut Encoder, r: &mut Rng, n: u64) {
    let created = BASE_MS - r.below(3 * YEAR_MS) as i64;
    let first = r.pick(FIRST);
    let last = r.pick(LAST);
    e.begin();
    e.object_id("_id", r, created);
    e.string(
        "email",
        &format!(
            "{}.{}{}@example.com",
            first.to_lowercase(),
            last.to_lowercase(),
            n
        ),
    );
    e.begin_doc("name");
    e.string("first", first);
    e.string("last", last);
    e.end();
    e.string("phone", &format!("+1-555-{:04}", r.below(10_000)));
    e.begin_array("addresses");
    for i in 0..1 + r.below(3) as usize {
        e.begin_doc(index_key(i));
        e.string("label", if i == 0 { "home" } else { "work" });
        address(e, r);
        e.end();
    }
    e.end();
    e.date("createdAt", created);
    e.begin_doc("loyalty");
    e.string("tier", r.pick(&["bronze", "silver", "gold", "platinum"]));
    e.int32("points", r.below(100_000) as i32);
    e.end();
    e.bool("marketing", r.below(2) == 0);
    let mut id = [0u8; 16];
    r.fill(&mut id);
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    e.binary("externalId", 4, &id);
    let mut hash = [0u8; 32];
    r.fill(&mut hash);
    e.binary("passwordHash", 0, &hash);
    if r.below(4) == 0 {
        e.null("lastLogin");
    } else {
        e.date("lastLogin", BASE_MS + r.below(2 * YEAR_MS) as i64);
    }
    let mut bio = String::new();
    r.words(&mut bio, 40, 120);
    e.string("bio", &bio);
    e.begin_doc("prefs");
    e.string("lang", r.pick(&["en", "fr", "de", "ja", "pt-BR", "pl"]));
    e.string(
        "tz",
        r.pick(&["UTC", "Europe/Zurich", "America/New_York", "Asia/Tokyo"]),
    );
    e.bool("darkMode", r.below(2) == 0);
    e.end();
    e.end();
}

fn product(e: &mut Encoder, r: &mut Rng, n: u64) {
    e.begin();
    e.string("_id", &format!("SKU-{n:06}"));
    let mut name = String::new();
    r.words(&mut name, 2, 4);
    e.string("name", &name);
    let mut description = String::new();
    r.words(&mut description, 80, 160);
    e.string("description", &description);
    e.decimal_cents("price", 199 + r.below(50_000));
    e.int32("stock", r.below(5000) as i32);
    e.begin_array("categories");
    for i in 0..1 + r.below(3) as usize {
        e.string(index_key(i), r.pick(CATEGORIES));
    }
    e.end();
    e.begin_doc("attributes");
    e.string("color", r.pick(&["red", "blue", "black", "white", "green"]));
    e.string("size", r.pick(&["XS", "S", "M", "L", "XL"]));
    e.double("weightKg", r.below(10_000) as f64 / 1000.0);
    e.begin_array("dimensionsCm");
    for i in 0..3 {
        e.double(index_key(i), 1.0 + r.below(1000) as f64 / 10.0);
    }
    e.end();
    e.end();
    e.begin_array("images");
    for i in 0..r.below(4) as usize {
        e.string(
            index_key(i),
            &format!("https://cdn.example.com/p/{n:06}/{i}.jpg"),
        );
    }
    e.end();
    e.double("rating", 1.0 + r.below(400) as f64 / 100.0);
    e.int64("reviews", r.below(1_000_000) as i64);
    e.timestamp(
        "updated",
        1_704_067_200 + r.below(YEAR_MS / 1000) as u32,
        1 + r.below(20) as u32,
    );
    if r.below(8) == 0 {
        e.regex("skuPattern", &format!("^SKU-{:03}", r.below(1000)), "i");
    }
    e.end();
}

fn event(e: &mut Encoder, r: &mut Rng, n: u64) {
    let ts = BASE_MS + r.below(2 * YEAR_MS) as i64;
    e.begin();
    e.object_id("_id", r, ts);
    e.date("ts", ts);
    let kind = r.pick(EVENT_TYPES);
    e.string("type", kind);
    let t = ts - r.below(YEAR_MS) as i64;
    e.object_id("userId", r, t);
    let mut session = [0u8; 16];
    r.fill(&mut session);
    e.binary("session", 4, &session);
    e.int64("seq", n as i64);
    e.int32("durationMs", r.below(60_000) as i32);
    e.double("value", r.below(1_000_000) as f64 / 100.0);
    e.begin_doc("props");
    match kind {
        "search" => {
            let mut q = String::new();
            r.words(&mut q, 1, 5);
            e.string("query", &q);
            e.int32("results", r.below(500) as i32);
        }
        "purchase" | "add_to_cart" => {
            e.string("sku", &format!("SKU-{:06}", r.below(50_000)));
            e.decimal_cents("amount", 199 + r.below(100_000));
        }
        "error" => {
            e.int32("code", 400 + r.below(200) as i32);
            e.string("message", r.pick(NOTES));
        }
        _ => {
            e.string(
                "path",
                &format!("/c/{}/{}", r.pick(CATEGORIES), r.below(10_000)),
            );
        }
    }
    e.end();
    e.string(
        "ua",
        r.pick(&[
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
            "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36",
        ]),
    );
    e.string(
        "ip",
        &format!("10.{}.{}.{}", r.below(256), r.below(256), r.below(256)),
    );
    e.begin_doc("ctx");
    e.string("page", &format!("/p/{}", r.below(100_000)));
    e.string(
        "referrer",
        r.pick(&["https://www.google.com/", "https://news.example.org/", ""]),
    );
    e.end();
    let mut message = String::new();
    r.words(&mut message, 40, 100);
    e.string("message", &message);
    e.begin_array("experiments");
    for i in 0..r.below(5) as usize {
        e.begin_doc(index_key(i));
        e.string("name", &format!("exp-{}", r.below(500)));
        e.string("variant", r.pick(&["control", "a", "b"]));
        e.end();
    }
    e.end();
    e.timestamp("optime", (ts / 1000) as u32, 1 + r.below(100) as u32);
    e.end();
}

/// Rare and deprecated types. Document 0 has every BSON type; later ones rotate through them.
fn legacy(e: &mut Encoder, r: &mut Rng, n: u64) {
    let ts = BASE_MS - r.below(10 * YEAR_MS) as i64;
    e.begin();
    e.object_id("_id", r, ts);
    let all = n == 0;
    let pick = r.below(8);
    if all || pick == 0 {
        e.symbol("symbol", "legacySymbol");
        e.undefined("undefinedField");
        e.min_key("lowest");
        e.max_key("highest");
    }
    if all || pick == 1 {
        let mut oid = [0u8; 12];
        r.fill(&mut oid);
        e.db_pointer("ref", "shop.customers", &oid);
        e.code("validator", "function () { return this.qty > 0; }");
        e.code_w_scope("scoped", "function () { return x + y; }", |s| {
            s.int32("x", 1);
            s.begin_doc("y");
            s.string("nested", "scope");
            s.end();
        });
    }
    if all || pick == 2 {
        let mut bytes = [0u8; 24];
        r.fill(&mut bytes);
        e.binary("generic", 0, &bytes);
        e.binary("function", 1, &bytes[..8]);
        e.binary_old("old", &bytes[..12]);
        e.binary("uuidOld", 3, &bytes[..16]);
        e.binary("uuid", 4, &bytes[8..24]);
        e.binary("md5", 5, &bytes[..16]);
        e.binary("encrypted", 6, &bytes);
        e.binary("column", 7, &bytes[..10]);
        e.binary("sensitive", 8, &bytes[..5]);
        e.binary("userDefined", 0x80, &bytes[..7]);
        e.binary("empty", 0, &[]);
    }
    if all || pick == 3 {
        e.double("nan", f64::NAN);
        e.double("inf", f64::INFINITY);
        e.double("negInf", f64::NEG_INFINITY);
        e.double("negZero", -0.0);
        e.double("tiny", 5e-324);
        e.double("huge", 1.797_693_134_862_315_7e308);
        e.int64("minLong", i64::MIN);
        e.int64("maxLong", i64::MAX);
        e.int32("minInt", i32::MIN);
    }
    if all || pick == 4 {
        e.decimal128_raw("decNaN", 0, 0x7c00_0000_0000_0000);
        e.decimal128_raw("decInf", 0, 0x7800_0000_0000_0000);
        e.decimal128_raw("decNegZero", 0, 0xb040_0000_0000_0000);
        e.decimal_cents("decPrice", r.below(1_000_000));
        e.regex("re", "^caf[eé]s?$", "imsux");
        e.date("beforeEpoch", -2_208_988_800_000);
        e.date("farFuture", 253_402_300_800_000);
        e.timestamp("ts", u32::MAX, u32::MAX);
    }
    // Always: a nested structure with an array of mixed types and a document in an array.
    e.begin_doc("nested");
    e.begin_array("mixed");
    e.int32("0", 1);
    e.string("1", "two");
    e.double("2", 3.5);
    e.null("3");
    e.bool("4", false);
    e.begin_doc("5");
    e.begin_array("deep");
    e.begin_array("0");
    e.int64("0", 42);
    e.end();
    e.end();
    e.end();
    e.end();
    e.string("weird key with spaces, dots. and $dollar", "ok");
    e.string("", "empty key");
    e.end();
    let mut note = String::new();
    r.words(&mut note, 40, 80);
    e.string("note", &note);
    e.end();
}

// ---------------------------------------------------------------------------------------------
// Encoding

/// "0".."63" for array keys without allocating.
fn index_key(i: usize) -> &'static str {
    const KEYS: [&str; 64] = [
        "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
        "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31",
        "32", "33", "34", "35", "36", "37", "38", "39", "40", "41", "42", "43", "44", "45", "46",
        "47", "48", "49", "50", "51", "52", "53", "54", "55", "56", "57", "58", "59", "60", "61",
        "62", "63",
    ];
    KEYS[i.min(63)]
}

/// A minimal BSON writer: documents and arrays are opened and closed like a stack; lengths
/// are patched in when they close. Keys must not contain NUL (all ours are literals).
#[derive(Default)]
struct Encoder {
    buf: Vec<u8>,
    open: Vec<usize>,
}

impl Encoder {
    fn clear(&mut self) {
        self.buf.clear();
        self.open.clear();
    }

    fn begin(&mut self) {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&[0; 4]);
    }

    fn end(&mut self) {
        self.buf.push(0);
        if let Some(start) = self.open.pop() {
            let len = (self.buf.len() - start) as i32;
            self.buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
        }
    }

    fn key(&mut self, kind: u8, key: &str) {
        self.buf.push(kind);
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.push(0);
    }

    fn raw_string(&mut self, s: &str) {
        self.buf
            .extend_from_slice(&((s.len() + 1) as i32).to_le_bytes());
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn begin_doc(&mut self, key: &str) {
        self.key(0x03, key);
        self.begin();
    }

    fn begin_array(&mut self, key: &str) {
        self.key(0x04, key);
        self.begin();
    }

    fn double(&mut self, key: &str, v: f64) {
        self.key(0x01, key);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn string(&mut self, key: &str, v: &str) {
        self.key(0x02, key);
        self.raw_string(v);
    }

    fn binary(&mut self, key: &str, subtype: u8, bytes: &[u8]) {
        self.key(0x05, key);
        self.buf
            .extend_from_slice(&(bytes.len() as i32).to_le_bytes());
        self.buf.push(subtype);
        self.buf.extend_from_slice(bytes);
    }

    /// Subtype 2 carries its own inner length prefix.
    fn binary_old(&mut self, key: &str, bytes: &[u8]) {
        self.key(0x05, key);
        self.buf
            .extend_from_slice(&((bytes.len() + 4) as i32).to_le_bytes());
        self.buf.push(2);
        self.buf
            .extend_from_slice(&(bytes.len() as i32).to_le_bytes());
        self.buf.extend_from_slice(bytes);
    }

    fn undefined(&mut self, key: &str) {
        self.key(0x06, key);
    }

    /// An ObjectId whose timestamp matches `ms` and whose other 8 bytes come from `r`.
    fn object_id(&mut self, key: &str, r: &mut Rng, ms: i64) {
        self.key(0x07, key);
        self.buf
            .extend_from_slice(&((ms / 1000) as u32).to_be_bytes());
        self.buf.extend_from_slice(&r.next().to_le_bytes());
    }

    fn object_id_bytes(&mut self, key: &str, oid: &[u8; 12]) {
        self.key(0x07, key);
        self.buf.extend_from_slice(oid);
    }

    fn bool(&mut self, key: &str, v: bool) {
        self.key(0x08, key);
        self.buf.push(v as u8);
    }

    fn date(&mut self, key: &str, ms: i64) {
        self.key(0x09, key);
        self.buf.extend_from_slice(&ms.to_le_bytes());
    }

    fn null(&mut self, key: &str) {
        self.key(0x0A, key);
    }

    fn regex(&mut self, key: &str, pattern: &str, options: &str) {
        self.key(0x0B, key);
        self.buf.extend_from_slice(pattern.as_bytes());
        self.buf.push(0);
        self.buf.extend_from_slice(options.as_bytes());
        self.buf.push(0);
    }

    fn db_pointer(&mut self, key: &str, namespace: &str, oid: &[u8; 12]) {
        self.key(0x0C, key);
        self.raw_string(namespace);
        self.buf.extend_from_slice(oid);
    }

    fn code(&mut self, key: &str, code: &str) {
        self.key(0x0D, key);
        self.raw_string(code);
    }

    fn symbol(&mut self, key: &str, v: &str) {
        self.key(0x0E, key);
        self.raw_string(v);
    }

    fn code_w_scope(&mut self, key: &str, code: &str, scope: impl FnOnce(&mut Encoder)) {
        self.key(0x0F, key);
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        self.raw_string(code);
        self.begin();
        scope(self);
        self.end();
        let len = (self.buf.len() - start) as i32;
        self.buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    }

    fn int32(&mut self, key: &str, v: i32) {
        self.key(0x10, key);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn timestamp(&mut self, key: &str, time: u32, increment: u32) {
        self.key(0x11, key);
        self.buf.extend_from_slice(&increment.to_le_bytes());
        self.buf.extend_from_slice(&time.to_le_bytes());
    }

    fn int64(&mut self, key: &str, v: i64) {
        self.key(0x12, key);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// `cents` × 10⁻² as an IEEE 754-2008 decimal128 (BID): for coefficients below 2¹¹³ the
    /// high word is sign | biased exponent << 49 | coefficient high bits.
    fn decimal_cents(&mut self, key: &str, cents: u64) {
        const BIAS: u64 = 6176;
        self.decimal128_raw(key, cents, (BIAS - 2) << 49);
    }

    fn decimal128_raw(&mut self, key: &str, low: u64, high: u64) {
        self.key(0x13, key);
        self.buf.extend_from_slice(&low.to_le_bytes());
        self.buf.extend_from_slice(&high.to_le_bytes());
    }

    fn min_key(&mut self, key: &str) {
        self.key(0xFF, key);
    }

    fn max_key(&mut self, key: &str) {
        self.key(0x7F, key);
    }
}

/// SplitMix64: tiny, fast, and fixed forever (the sample must not change under us).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// An independent stream, so one collection's size does not shift the others.
    fn fork(&mut self) -> Rng {
        Rng(self.next())
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((self.next() as u128 * n as u128) >> 64) as u64
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    /// `min` to `min + spread - 1` words.
    fn words(&mut self, out: &mut String, min: usize, spread: u64) {
        let n = min + self.below(spread) as usize;
        for i in 0..n {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(self.pick(WORDS));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_documents_are_valid_bson() {
        let mut r = Rng::new(7);
        let mut e = Encoder::default();
        for n in 0..50 {
            for f in [order, customer, product, event, legacy] {
                e.clear();
                f(&mut e, &mut r, n);
                let doc = bson::RawDocument::from_bytes(&e.buf).unwrap();
                let owned: bson::Document = doc.try_into().unwrap();
                assert!(owned.contains_key("_id"));
            }
        }
    }

    #[test]
    fn decimal_cents_encodes_two_decimal_places() {
        let mut e = Encoder::default();
        e.begin();
        e.decimal_cents("p", 1999);
        e.end();
        let doc: bson::Document = bson::RawDocument::from_bytes(&e.buf)
            .unwrap()
            .try_into()
            .unwrap();
        assert_eq!(doc.get("p").unwrap().to_string(), "19.99");
    }
}
