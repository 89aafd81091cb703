//! An HTTP proxy in front of an AWS-JSON-protocol server (moto's Kinesis) that injects the
//! failures real Kinesis returns and moto never does:
//!
//! - [`AwsFaultProxy::throttle_calls`]: the next N PutRecords calls are answered
//!   `400 ProvisionedThroughputExceededException` as a whole, and nothing is written.
//! - [`AwsFaultProxy::fail_entries`]: in the next N PutRecords calls every K-th entry fails
//!   (`ProvisionedThroughputExceededException` or `InternalFailure`, alternating). As in real
//!   Kinesis, a failed entry is not written: the proxy takes it out of the request it forwards
//!   and puts the failure back at its index in the answer (`FailedRecordCount` counts it).
//!
//! Everything else is forwarded as is. HTTP/1.1 with `Content-Length` bodies and keep-alive,
//! which is what the AWS SDK sends to a plain `http://` endpoint. It listens on a free port of
//! 127.0.0.1 only and stops when dropped.
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value as Json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

const PUT_RECORDS: &str = "Kinesis_20131202.PutRecords";

#[derive(Debug, Default)]
struct Plan {
    throttle_calls: u64,
    fail_calls: u64,
    fail_every: u64,
}

/// What was injected so far.
#[derive(Debug, Default)]
pub struct Injected {
    pub throttled_calls: AtomicU64,
    pub failed_entries: AtomicU64,
    pub put_records_calls: AtomicU64,
}

pub struct AwsFaultProxy {
    addr: SocketAddr,
    plan: Arc<Mutex<Plan>>,
    pub injected: Arc<Injected>,
    accept: AbortHandle,
}

impl AwsFaultProxy {
    /// Listens on a free loopback port in front of `upstream`. Inside a tokio runtime.
    pub fn start(upstream: SocketAddr) -> Self {
        let std_listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port for the proxy");
        std_listener.set_nonblocking(true).expect("non-blocking listener");
        let listener = TcpListener::from_std(std_listener).expect("register the proxy listener (inside a tokio runtime?)");
        let addr = listener.local_addr().expect("proxy address");
        let plan = Arc::new(Mutex::new(Plan::default()));
        let injected = Arc::new(Injected::default());
        let (p, i) = (plan.clone(), injected.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { continue };
                tokio::spawn(serve(client, upstream, p.clone(), i.clone()));
            }
        })
        .abort_handle();
        Self { addr, plan, injected, accept }
    }

    /// `http://127.0.0.1:PORT`, for the client's endpoint.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next `calls` PutRecords calls are throttled whole.
    pub fn throttle_calls(&self, calls: u64) {
        self.plan.lock().expect("plan").throttle_calls = calls;
    }

    /// In the next `calls` PutRecords calls, every `every`-th entry fails.
    pub fn fail_entries(&self, calls: u64, every: u64) {
        let mut p = self.plan.lock().expect("plan");
        p.fail_calls = calls;
        p.fail_every = every.max(1);
    }

    pub fn throttled_calls(&self) -> u64 {
        self.injected.throttled_calls.load(Ordering::Relaxed)
    }

    pub fn failed_entries(&self) -> u64 {
        self.injected.failed_entries.load(Ordering::Relaxed)
    }
}

impl Drop for AwsFaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// One HTTP message: the head (start line and headers, as sent) and its body.
struct Message {
    head: String,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The same message with `body`, `Content-Length` set to its length.
    fn with_body(&self, body: Vec<u8>) -> Message {
        let mut head = String::with_capacity(self.head.len());
        for l in self.head.split("\r\n").filter(|l| !l.is_empty()) {
            if l.split_once(':').is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("content-length")) {
                continue;
            }
            head.push_str(l);
            head.push_str("\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        Message { head, body }
    }

    async fn write(&self, to: &mut (impl AsyncWriteExt + Unpin)) -> std::io::Result<()> {
        to.write_all(self.head.as_bytes()).await?;
        to.write_all(&self.body).await?;
        to.flush().await
    }
}

/// Reads one message; `None` at a clean end of the connection.
async fn read_message(from: &mut (impl AsyncBufReadExt + Unpin)) -> std::io::Result<Option<Message>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if from.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        let end = line == "\r\n";
        head.push_str(&line);
        if end {
            break;
        }
    }
    let mut m = Message { head, body: Vec::new() };
    let len: usize = m.header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    m.body.resize(len, 0);
    from.read_exact(&mut m.body).await?;
    Ok(Some(m))
}

async fn serve(client: TcpStream, upstream: SocketAddr, plan: Arc<Mutex<Plan>>, injected: Arc<Injected>) {
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let (crx, mut ctx) = client.into_split();
    let (srx, mut stx) = server.into_split();
    let (mut crx, mut srx) = (BufReader::new(crx), BufReader::new(srx));
    while let Ok(Some(req)) = read_message(&mut crx).await {
        let put = req.header("x-amz-target") == Some(PUT_RECORDS);
        let (throttle, fail_every) = if put {
            injected.put_records_calls.fetch_add(1, Ordering::Relaxed);
            let mut p = plan.lock().expect("plan");
            if p.throttle_calls > 0 {
                p.throttle_calls -= 1;
                (true, 0)
            } else if p.fail_calls > 0 {
                p.fail_calls -= 1;
                (false, p.fail_every)
            } else {
                (false, 0)
            }
        } else {
            (false, 0)
        };
        if throttle {
            injected.throttled_calls.fetch_add(1, Ordering::Relaxed);
            let body = json!({"__type": "ProvisionedThroughputExceededException", "message": "Rate exceeded for shard (injected by the test proxy)"});
            let resp =
                Message { head: "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.1\r\n".into(), body: Vec::new() }
                    .with_body(body.to_string().into_bytes());
            if resp.write(&mut ctx).await.is_err() {
                return;
            }
            continue;
        }
        let (forward, failed) = if fail_every > 0 { drop_entries(&req, fail_every) } else { (None, Vec::new()) };
        let sent = match &forward {
            Some(f) => f.write(&mut stx).await,
            None => req.write(&mut stx).await,
        };
        if sent.is_err() {
            return;
        }
        let Ok(Some(resp)) = read_message(&mut srx).await else { return };
        let resp = if failed.is_empty() { resp } else { splice_failures(resp, &failed, &injected) };
        if resp.write(&mut ctx).await.is_err() {
            return;
        }
    }
}

/// The request without every `every`-th entry, and the indexes taken out (empty if the body
/// is not what PutRecords sends: then it goes as it is).
fn drop_entries(req: &Message, every: u64) -> (Option<Message>, Vec<usize>) {
    let Ok(mut body) = serde_json::from_slice::<Json>(&req.body) else { return (None, Vec::new()) };
    let Some(records) = body.get_mut("Records").and_then(Json::as_array_mut) else { return (None, Vec::new()) };
    let failed: Vec<usize> = (0..records.len()).filter(|i| (*i as u64 + 1).is_multiple_of(every)).collect();
    if failed.is_empty() || failed.len() == records.len() {
        // Kinesis rejects an empty call: leave a call this short alone.
        return (None, Vec::new());
    }
    let mut i = 0;
    records.retain(|_| {
        i += 1;
        !(i as u64).is_multiple_of(every)
    });
    (Some(req.with_body(body.to_string().into_bytes())), failed)
}

/// Puts a failed entry back at each index of `failed` in moto's answer.
fn splice_failures(resp: Message, failed: &[usize], injected: &Injected) -> Message {
    let Ok(mut body) = serde_json::from_slice::<Json>(&resp.body) else { return resp };
    let Some(results) = body.get("Records").and_then(Json::as_array).cloned() else { return resp };
    let mut out = Vec::with_capacity(results.len() + failed.len());
    let mut written = results.into_iter();
    let total = out.capacity();
    for i in 0..total {
        if failed.binary_search(&i).is_ok() {
            let code = if i % 2 == 0 { "ProvisionedThroughputExceededException" } else { "InternalFailure" };
            out.push(json!({"ErrorCode": code, "ErrorMessage": "injected by the test proxy"}));
        } else if let Some(r) = written.next() {
            out.push(r);
        }
    }
    injected.failed_entries.fetch_add(failed.len() as u64, Ordering::Relaxed);
    body["Records"] = Json::Array(out);
    body["FailedRecordCount"] = json!(failed.len());
    resp.with_body(body.to_string().into_bytes())
}
