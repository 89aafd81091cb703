//! Reading a stream back (`sluice tail --source kinesis`): every shard, from its oldest record
//! or from now on, as JSON lines — the reference pipeline's "read the first records" and
//! "follow the updates" scripts in one reader.
use std::collections::BTreeSet;
use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_sdk_kinesis::operation::get_records::GetRecordsOutput;
use aws_sdk_kinesis::types::ShardIteratorType;
use aws_sdk_kinesis::Client;
use sluice_core::retry::{Retry, RetryPolicy};
use sluice_core::tailing::{print_round, seq_order, LineFilter, TailOptions};
use sluice_core::SluiceError;

use crate::client::{classify, client, probe};
use crate::config::KinesisConfig;

/// How often a shard is read while there is nothing new: Kinesis allows 5 GetRecords per
/// second per shard, shared by every consumer.
const IDLE_POLL: Duration = Duration::from_millis(250);

/// Prints the stream's records matching `opts` to `out` and returns how many were printed.
/// Each round reads every shard once and prints what it got in `seq` order (records of one
/// key are in order in their shard; across shards the stream has no order). Fails with the
/// cause and the fix when the stream cannot be read.
pub async fn tail(cfg: &KinesisConfig, opts: &TailOptions, out: &mut impl Write) -> Result<usize> {
    let filter = LineFilter::new(cfg.format, opts.format.unwrap_or(cfg.format), opts.table.as_deref(), BTreeSet::new())?;
    if opts.limit == Some(0) {
        return Ok(0);
    }
    let client = client(cfg).await;
    probe(&client, cfg).await?;
    let mut iterators = Vec::new();
    for shard in shards(&client, cfg).await? {
        let kind = if opts.latest { ShardIteratorType::Latest } else { ShardIteratorType::TrimHorizon };
        iterators.push(shard_iterator(&client, cfg, &shard, kind, None).await?);
    }
    // Said once every shard has its iterator: from here on `latest` sees every new record.
    tracing::info!(stream = %cfg.stream, shards = iterators.len(), from = if opts.latest { "latest" } else { "earliest" }, "reading the stream");
    let mut printed = 0;
    let mut retry = Retry::new(RetryPolicy::new(cfg.retry_for.0));
    loop {
        let mut round: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut behind = false;
        for it in iterators.iter_mut() {
            let Some(current) = it.clone() else { continue };
            let got = get_records(&client, cfg, current, &mut retry).await?;
            for r in got.records() {
                let line = r.data().as_ref();
                if let Some(rendered) = filter.render(line).context("a record of the stream is not a change event")? {
                    round.push((seq_order(line), rendered.into_owned()));
                }
            }
            behind |= got.millis_behind_latest().is_some_and(|ms| ms > 0) && !got.records().is_empty();
            *it = got.next_shard_iterator().map(str::to_string);
        }
        if print_round(round, out, &mut printed, opts.limit)? {
            return Ok(printed);
        }
        if !behind {
            if !opts.follow || iterators.iter().all(Option::is_none) {
                return Ok(printed);
            }
            tokio::time::sleep(IDLE_POLL).await;
        }
    }
}

/// Where reading `shard` starts (`at_ms` for `AtTimestamp`); `None` for a closed shard read
/// to its end.
async fn shard_iterator(
    client: &Client,
    cfg: &KinesisConfig,
    shard: &str,
    kind: ShardIteratorType,
    at_ms: Option<i64>,
) -> Result<Option<String>, SluiceError> {
    let it = client
        .get_shard_iterator()
        .stream_name(&cfg.stream)
        .shard_id(shard)
        .shard_iterator_type(kind)
        .set_timestamp(at_ms.map(aws_sdk_kinesis::primitives::DateTime::from_millis))
        .send()
        .await
        .map_err(|e| classify(e, cfg, &format!("read Kinesis stream {}", cfg.stream)))?;
    Ok(it.shard_iterator().map(str::to_string))
}

/// One GetRecords call; throttling (5 reads per second per shard, shared by every consumer)
/// and other transient failures are retried under the one retry policy, for the sink's
/// `retry_for`.
async fn get_records(client: &Client, cfg: &KinesisConfig, iterator: String, retry: &mut Retry) -> Result<GetRecordsOutput, SluiceError> {
    loop {
        match client.get_records().shard_iterator(iterator.clone()).limit(1000).send().await {
            Ok(out) => {
                retry.succeeded();
                return Ok(out);
            }
            Err(e) => {
                let delay = retry.next(classify(e, cfg, &format!("read Kinesis stream {}", cfg.stream)))?;
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// The highest change `seq` among the records that arrived at or after `since_ms` (epoch ms),
/// over every shard: what a sink restarting after a crash may have sent past its last commit.
pub(crate) async fn max_seq_since(client: &Client, cfg: &KinesisConfig, since_ms: i64) -> Result<Option<u64>, SluiceError> {
    let mut retry = Retry::new(RetryPolicy::new(cfg.retry_for.0));
    let mut max = None;
    for shard in shards(client, cfg).await? {
        let mut next = shard_iterator(client, cfg, &shard, ShardIteratorType::AtTimestamp, Some(since_ms)).await?;
        while let Some(current) = next {
            let got = get_records(client, cfg, current, &mut retry).await?;
            for r in got.records() {
                let seq = seq_order(r.data().as_ref()) / 2;
                if seq != u64::MAX / 2 {
                    max = max.max(Some(seq));
                }
            }
            let done = got.records().is_empty() && got.millis_behind_latest().unwrap_or(0) == 0;
            next = if done { None } else { got.next_shard_iterator().map(str::to_string) };
        }
    }
    Ok(max)
}

/// The stream's shards, open and closed (a closed one still holds records until they expire).
async fn shards(client: &Client, cfg: &KinesisConfig) -> Result<Vec<String>, SluiceError> {
    let mut ids = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let req = match &token {
            Some(t) => client.list_shards().next_token(t),
            None => client.list_shards().stream_name(&cfg.stream),
        };
        let page = req.send().await.map_err(|e| classify(e, cfg, &format!("list the shards of Kinesis stream {}", cfg.stream)))?;
        ids.extend(page.shards().iter().map(|s| s.shard_id().to_string()));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            return Ok(ids);
        }
    }
}
