//! The masking transform: `[[mask]]` rules plus `[detect]` decisions, applied to every event's
//! before and after images before any sink sees them.
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sluice_core::config::{Config, DetectConfig, Entity, MaskMethod, MaskRule, SinkSettings, SourceSettings};
use sluice_core::event::ChangeEvent;
use sluice_core::schema::{SchemaRef, SqlType, TableId};
use sluice_core::transform::{ColumnDecision, Transform};
use sluice_core::{Row, SluiceError, Value};
use tracing::{info, warn};

use crate::detect::Detector;
use crate::key::MaskKey;
use crate::method::Masking;
use crate::plan::{self, Choice, ColPlan, MaskingId, Plan};

/// What detection concluded about one column. Persisted with every checkpoint, so a column
/// never flips between masked and clear across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Decision {
    /// Still sampling; meanwhile every value that matches an entity is masked by itself.
    Sampling { seen: u32, hits: BTreeMap<Entity, u32> },
    /// Masked whole from now on.
    Masked { entity: Entity, seen: u32, hits: u32 },
    /// Not PII by its content (matching spans may still be masked with `spans = true`).
    Clear { seen: u32 },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Persisted {
    /// `db.table.column` → decision.
    decisions: BTreeMap<String, Decision>,
}

struct Detection {
    cfg: DetectConfig,
    detector: Detector,
    masking: MaskingId,
}

pub struct Masker {
    rules: Vec<(MaskRule, MaskingId)>,
    detection: Option<Detection>,
    maskings: Vec<Masking>,
    /// `hash` with the configured key, for key columns; `None` without a key.
    key_hash: Option<MaskingId>,
    state: Persisted,
    /// Bumped on every decision: cached plans older than this are rebuilt.
    generation: u64,
    plans: HashMap<TableId, (SchemaRef, u64, Arc<Plan>)>,
    last: Option<(SchemaRef, u64, Arc<Plan>)>,
}

impl Masker {
    /// `None` when the config masks nothing. Fails when `hash` is used without a key.
    pub fn from_config<S: SourceSettings, K: SinkSettings>(cfg: &Config<S, K>) -> Result<Option<Self>, SluiceError> {
        if !cfg.masks_anything() {
            return Ok(None);
        }
        let key = MaskKey::load(cfg)?;
        Ok(Some(Self::new(cfg.mask.clone(), cfg.detect.clone(), key)))
    }

    pub fn new(rules: Vec<MaskRule>, detect: Option<DetectConfig>, key: Option<MaskKey>) -> Self {
        let mut maskings = Vec::new();
        let mut add = |m: Masking| {
            maskings.push(m);
            maskings.len() - 1
        };
        let key_hash = key.as_ref().map(|k| add(Masking::new(MaskMethod::Hash, None, Some(k.clone()))));
        let rules = rules
            .into_iter()
            .map(|r| {
                let id = add(Masking::new(r.method, r.keep, key.clone()));
                (r, id)
            })
            .collect();
        let detection = detect.map(|cfg| {
            let masking = add(Masking::new(cfg.action, cfg.keep, key.clone()));
            Detection { detector: Detector::new(&cfg.entities), cfg, masking }
        });
        Self { rules, detection, maskings, key_hash, state: Persisted::default(), generation: 0, plans: HashMap::new(), last: None }
    }

    /// Detection decisions so far, `db.table.column` → decision.
    pub fn decisions(&self) -> &BTreeMap<String, Decision> {
        &self.state.decisions
    }

    /// Masks rows of one table as snapshot reads would be masked (used by `sluice validate` to
    /// compare the source with the masked lake). Returns the masked schema and rows.
    pub fn mask_rows(&mut self, schema: &SchemaRef, rows: Vec<Row>) -> Result<(SchemaRef, Vec<Row>), SluiceError> {
        let plan = self.plan(schema)?;
        if plan.identity {
            return Ok((schema.clone(), rows));
        }
        let rows = rows.into_iter().map(|r| self.mask_row(schema, &plan, r, false)).collect::<Result<_, _>>()?;
        Ok((plan.out.clone(), rows))
    }

    fn plan(&mut self, schema: &SchemaRef) -> Result<Arc<Plan>, SluiceError> {
        // Consecutive events are mostly of one table: check the last plan before hashing names.
        let current = |(s, g, _): &(SchemaRef, u64, Arc<Plan>)| *g == self.generation && Arc::ptr_eq(s, schema);
        if let Some(hit) = self.last.as_ref().filter(|e| current(e)).or_else(|| self.plans.get(&schema.id).filter(|e| current(e))) {
            let plan = hit.2.clone();
            self.last = Some(hit.clone());
            return Ok(plan);
        }
        let choose = |i: usize| {
            let col = &schema.columns[i];
            let (db, table) = (&schema.id.db, &schema.id.table);
            if let Some((rule, id)) = self.rules.iter().find(|(r, _)| r.columns.iter().any(|p| p.matches(db, table, &col.name))) {
                return Choice::Method(*id, rule.method);
            }
            let Some(d) = &self.detection else { return Choice::Keep };
            if !matches!(col.ty, SqlType::Text | SqlType::Json) || !d.cfg.examines(db, table, &col.name) {
                return Choice::Keep;
            }
            match self.state.decisions.get(&column_name(&schema.id, &col.name)) {
                Some(Decision::Masked { .. }) => Choice::Method(d.masking, d.cfg.action),
                Some(Decision::Clear { .. }) if d.cfg.spans => Choice::Spans,
                Some(Decision::Clear { .. }) => Choice::Keep,
                Some(Decision::Sampling { .. }) | None => Choice::Sample,
            }
        };
        let (plan, notes) = plan::build(schema, choose, self.key_hash)?;
        for n in notes {
            warn!("{n}");
        }
        let plan = Arc::new(plan);
        self.plans.insert(schema.id.clone(), (schema.clone(), self.generation, plan.clone()));
        self.last = Some((schema.clone(), self.generation, plan.clone()));
        Ok(plan)
    }

    fn mask_event(&mut self, mut ev: ChangeEvent) -> Result<ChangeEvent, SluiceError> {
        let plan = self.plan(&ev.schema)?;
        if plan.identity {
            return Ok(ev);
        }
        let schema = ev.schema.clone();
        // The row that counts for sampling: the after image, or the before image of a delete.
        let sampled_is_after = ev.after.is_some();
        if let Some(row) = ev.before.take() {
            ev.before = Some(self.mask_row(&schema, &plan, row, !sampled_is_after)?);
        }
        if let Some(row) = ev.after.take() {
            ev.after = Some(self.mask_row(&schema, &plan, row, true)?);
        }
        ev.schema = plan.out.clone();
        Ok(ev)
    }

    fn mask_row(&mut self, schema: &SchemaRef, plan: &Plan, mut row: Row, sample: bool) -> Result<Row, SluiceError> {
        for (i, v) in row.iter_mut().enumerate() {
            if plan.cols[i] != ColPlan::Keep {
                let value = std::mem::replace(v, Value::Null);
                *v = self.mask_value(schema, plan, i, value, sample)?;
            }
        }
        if plan.drops {
            let mut cols = plan.cols.iter();
            row.retain(|_| cols.next() != Some(&ColPlan::Drop));
        }
        Ok(row)
    }

    /// Column `i`'s value as its plan says (a dropped column's value is removed by the caller).
    fn mask_value(&mut self, schema: &SchemaRef, plan: &Plan, i: usize, v: Value, sample: bool) -> Result<Value, SluiceError> {
        let json = matches!(schema.columns[i].ty, SqlType::Json);
        Ok(match &plan.cols[i] {
            ColPlan::Keep => v,
            ColPlan::Null | ColPlan::Drop => Value::Null,
            ColPlan::Mask(id) => retype(self.maskings[*id].value(&v), json),
            ColPlan::Spans => self.spans(v, json),
            ColPlan::Sample => self.sample(schema, i, v, json, sample, schema.key.contains(&i))?,
        })
    }

    /// Detection still undecided: mask the value if it matches (fail closed), count it, and
    /// decide once the sample is complete.
    fn sample(&mut self, schema: &SchemaRef, i: usize, v: Value, json: bool, count: bool, is_key: bool) -> Result<Value, SluiceError> {
        let Some(d) = &self.detection else { return Ok(v) };
        let text = match &v {
            Value::Text(s) => Some(s.as_str()),
            _ => None,
        };
        let json_str = match (&v, json) {
            (Value::Json(s), true) => serde_json::from_str::<Json>(s).ok().and_then(|j| j.as_str().map(str::to_string)),
            _ => None,
        };
        let candidate = text.or(json_str.as_deref()).filter(|s| !s.trim().is_empty());
        let hit = candidate.and_then(|s| d.detector.classify(s));
        let counted = count && candidate.is_some();
        let masked = match hit {
            Some(_) if is_key => {
                let Some(h) = self.key_hash else {
                    return Err(SluiceError::permanent(format!(
                        "key column {}.{} holds PII by its content and must be masked with \"hash\" so the lake can still merge by key: set {} (or [mask_key] file), or exclude the column in [detect] exclude",
                        schema.id, schema.columns[i].name, sluice_core::config::MASK_KEY_ENV
                    )));
                };
                retype(self.maskings[h].value(&v), json)
            }
            Some(_) if matches!(d.cfg.action, MaskMethod::Null | MaskMethod::Drop) => Value::Null,
            Some(_) => retype(self.maskings[d.masking].value(&v), json),
            None if d.cfg.spans => self.spans(v, json),
            None => v,
        };
        if counted {
            self.count(schema, i, hit);
        }
        Ok(masked)
    }

    fn count(&mut self, schema: &SchemaRef, i: usize, hit: Option<Entity>) {
        let Some(d) = &self.detection else { return };
        let name = column_name(&schema.id, &schema.columns[i].name);
        let entry = self.state.decisions.entry(name.clone()).or_insert_with(|| Decision::Sampling { seen: 0, hits: BTreeMap::new() });
        let Decision::Sampling { seen, hits } = entry else { return };
        *seen += 1;
        if let Some(e) = hit {
            *hits.entry(e).or_default() += 1;
        }
        if *seen < d.cfg.sample {
            return;
        }
        let best = hits.iter().max_by_key(|(_, n)| **n).map(|(e, n)| (*e, *n));
        let seen = *seen;
        *entry = match best {
            Some((entity, n)) if f64::from(n) >= d.cfg.threshold * f64::from(seen) => {
                info!(column = %name, entity = entity.name(), matched = n, sampled = seen, action = ?d.cfg.action, "PII detected: column masked from now on");
                Decision::Masked { entity, seen, hits: n }
            }
            _ => {
                info!(column = %name, sampled = seen, "no PII detected: column left clear");
                Decision::Clear { seen }
            }
        };
        self.generation += 1;
    }

    /// Masks matching spans inside text or JSON string leaves.
    fn spans(&self, v: Value, json: bool) -> Value {
        let Some(d) = &self.detection else { return v };
        let masking = &self.maskings[d.masking];
        let mask = |s: &str| masking.text(s);
        match v {
            Value::Text(s) => d.detector.mask_spans(&s, mask).map(Value::Text).unwrap_or(Value::Text(s)),
            Value::Json(s) if json => match serde_json::from_str::<Json>(&s) {
                Ok(mut doc) => {
                    if mask_json_strings(&mut doc, &|t: &str| d.detector.mask_spans(t, mask)) {
                        Value::Json(doc.to_string())
                    } else {
                        Value::Json(s)
                    }
                }
                Err(_) => d.detector.mask_spans(&s, mask).map(Value::Json).unwrap_or(Value::Json(s)),
            },
            other => other,
        }
    }
}

/// Keeps JSON columns valid JSON: a masked JSON value becomes a JSON string.
fn retype(v: Value, json: bool) -> Value {
    match v {
        Value::Text(s) if json => Value::Json(Json::String(s).to_string()),
        other => other,
    }
}

fn mask_json_strings(doc: &mut Json, f: &impl Fn(&str) -> Option<String>) -> bool {
    match doc {
        Json::String(s) => match f(s) {
            Some(m) => {
                *s = m;
                true
            }
            None => false,
        },
        Json::Array(items) => items.iter_mut().fold(false, |acc, x| mask_json_strings(x, f) | acc),
        Json::Object(map) => map.values_mut().fold(false, |acc, x| mask_json_strings(x, f) | acc),
        _ => false,
    }
}

fn column_name(table: &TableId, column: &str) -> String {
    format!("{table}.{column}")
}

impl Transform for Masker {
    fn name(&self) -> &str {
        "mask"
    }

    fn open(&mut self, committed: Option<Json>) -> Result<(), SluiceError> {
        self.state = match committed {
            Some(j) => serde_json::from_value(j).map_err(|e| {
                SluiceError::permanent(format!("the state's PII detection decisions are unreadable ({e}); restore the state file"))
            })?,
            None => Persisted::default(),
        };
        self.generation += 1;
        for (i, (rule, _)) in self.rules.iter().enumerate() {
            let cols: Vec<String> = rule.columns.iter().map(ToString::to_string).collect();
            info!(rule = i + 1, columns = %cols.join(", "), method = ?rule.method, "mask rule");
        }
        for (column, d) in &self.state.decisions {
            match d {
                Decision::Masked { entity, seen, hits } => {
                    info!(%column, entity = entity.name(), matched = hits, sampled = seen, "PII detection: masked")
                }
                Decision::Clear { seen } => info!(%column, sampled = seen, "PII detection: clear"),
                Decision::Sampling { seen, .. } => info!(%column, sampled = seen, "PII detection: still sampling (matching values masked)"),
            }
        }
        if self.key_hash.is_none() && self.detection.is_some() {
            info!("no masking key: a key column detected as PII will stop the pipeline (set {})", sluice_core::config::MASK_KEY_ENV);
        }
        Ok(())
    }

    fn columns(&self) -> Vec<ColumnDecision> {
        let rules = self.rules.iter().enumerate().map(|(i, (rule, _))| ColumnDecision {
            column: rule.columns.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            decision: format!("masked ({})", rule.method.name()),
            reason: format!("[[mask]] rule {}", i + 1),
        });
        let detected = self.detection.as_ref().into_iter().flat_map(|d| {
            self.state.decisions.iter().map(move |(column, decision)| {
                let (decision, reason) = match decision {
                    Decision::Masked { entity, seen, hits } => {
                        (format!("masked ({})", d.cfg.action.name()), format!("{} in {hits} of {seen} sampled values", entity.name()))
                    }
                    Decision::Clear { seen } if d.cfg.spans => {
                        ("clear, matching spans masked".to_string(), format!("below the threshold in {seen} sampled values"))
                    }
                    Decision::Clear { seen } => ("clear".to_string(), format!("below the threshold in {seen} sampled values")),
                    Decision::Sampling { seen, .. } => {
                        ("sampling".to_string(), format!("{seen} of {} values sampled; matching values masked meanwhile", d.cfg.sample))
                    }
                };
                ColumnDecision { column: column.clone(), decision, reason }
            })
        });
        rules.chain(detected).collect()
    }

    fn apply(&mut self, events: Vec<ChangeEvent>) -> Result<Vec<ChangeEvent>, SluiceError> {
        events.into_iter().map(|ev| self.mask_event(ev)).collect()
    }

    fn mark(&self) -> Json {
        serde_json::to_value(&self.state).unwrap_or(Json::Null)
    }
}
