//! The pipe protocol between the daemon and its plugin host
//! (`helpdeskd plugin-host`): length-prefixed JSON frames (a 4-byte
//! big-endian length, then that many bytes of JSON) on the host's stdin and
//! stdout.
//!
//! The daemon sends [`ToHost::Load`] once, then [`ToHost::Dispatch`] batches.
//! The host answers a load with [`FromHost::Loaded`] and every plugin call of
//! a batch with one [`FromHost::Result`] frame, written as soon as the call
//! returns and in the order the batch lists the calls. So when the host dies
//! or stops answering, the first call without a result is the one that
//! killed it, and the calls after it were never made.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use plugin_api::Metadata;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Frames above this size are refused (a runaway plugin, a broken pipe).
pub const MAX_FRAME: usize = 256 * 1024 * 1024;

/// From the daemon to the host.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ToHost {
    /// Load these files (already vetted by [`super::loader::scan`]) and
    /// initialise each plugin with `config[name]`.
    Load {
        files: Vec<PathBuf>,
        config: BTreeMap<String, Value>,
    },
    /// Call the listed plugins for each event, in order.
    Dispatch { calls: Vec<Call> },
}

/// One event and the plugins to call with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    /// The event JSON (plugin-api's `Event`), its `id` filled in.
    pub event: Value,
    pub plugins: Vec<String>,
}

impl Call {
    pub fn event_id(&self) -> i64 {
        self.event.get("id").and_then(Value::as_i64).unwrap_or(0)
    }
}

/// From the host to the daemon.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum FromHost {
    Loaded {
        plugins: Vec<LoadReport>,
    },
    Result {
        event: i64,
        plugin: String,
        outcome: Outcome,
    },
}

/// What loading one file gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoadReport {
    pub file: PathBuf,
    pub result: Result<Metadata, String>,
}

/// The result of one plugin call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The actions, not yet validated (an action a newer plugin knows and
    /// this daemon does not is refused one by one, not the whole answer).
    Actions(Vec<Value>),
    /// The plugin returned an error, panicked, crashed or timed out.
    Error(String),
}

fn encode<T: Serialize>(msg: &T) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4];
    serde_json::to_writer(&mut buf, msg)?;
    let len = u32::try_from(buf.len() - 4)
        .ok()
        .filter(|&l| l as usize <= MAX_FRAME)
        .ok_or_else(|| io::Error::other("frame too large"))?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}

fn decode<T: DeserializeOwned>(body: &[u8]) -> io::Result<T> {
    serde_json::from_slice(body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn check_len(len: [u8; 4]) -> io::Result<usize> {
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is too large"),
        ));
    }
    Ok(len)
}

/// Writes one frame with a single `write_all`, so that a frame is either
/// wholly in the pipe or not at all when the writer dies.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> io::Result<()> {
    w.write_all(&encode(msg)?)?;
    w.flush()
}

/// Reads one frame; `None` at a clean end of stream.
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; check_len(len)?];
    r.read_exact(&mut body)?;
    decode(&body).map(Some)
}

pub async fn write_frame_async<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> io::Result<()> {
    w.write_all(&encode(msg)?).await?;
    w.flush().await
}

/// Reads one frame; `None` at a clean end of stream.
pub async fn read_frame_async<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut body = vec![0u8; check_len(len)?];
    r.read_exact(&mut body).await?;
    decode(&body).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut buf = Vec::new();
        let msg = FromHost::Result {
            event: 7,
            plugin: "p".into(),
            outcome: Outcome::Actions(vec![json!({"type": "add_note", "text": "x"})]),
        };
        write_frame(&mut buf, &msg).expect("write");
        write_frame(
            &mut buf,
            &FromHost::Loaded {
                plugins: vec![LoadReport {
                    file: "/p/a.so".into(),
                    result: Err("no".into()),
                }],
            },
        )
        .expect("write");
        assert_eq!(
            u32::from_be_bytes(buf[..4].try_into().expect("4")) as usize + 4,
            {
                let first = encode(&msg).expect("encode");
                first.len()
            }
        );
        let mut r = &buf[..];
        let a: Option<FromHost> = read_frame(&mut r).expect("read");
        assert!(matches!(a, Some(FromHost::Result { event: 7, .. })));
        let b: Option<FromHost> = read_frame(&mut r).expect("read");
        assert!(matches!(b, Some(FromHost::Loaded { .. })));
        let end: Option<FromHost> = read_frame(&mut r).expect("read");
        assert!(end.is_none());
    }

    #[test]
    fn a_truncated_or_oversized_frame_is_an_error() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &ToHost::Dispatch { calls: vec![] }).expect("write");
        buf.truncate(buf.len() - 1);
        assert!(read_frame::<_, ToHost>(&mut &buf[..]).is_err());
        let huge = (u32::MAX).to_be_bytes();
        assert!(read_frame::<_, ToHost>(&mut &huge[..]).is_err());
        assert!(read_frame::<_, ToHost>(&mut &b"\0\0\0\x02{x"[..]).is_err());
    }

    #[tokio::test]
    async fn async_and_sync_frames_agree() {
        let mut buf = Vec::new();
        let call = Call {
            event: json!({"id": 3, "hook": "ticket.created"}),
            plugins: vec!["a".into(), "b".into()],
        };
        write_frame_async(&mut buf, &ToHost::Dispatch { calls: vec![call] })
            .await
            .expect("write");
        match read_frame::<_, ToHost>(&mut &buf[..]).expect("read") {
            Some(ToHost::Dispatch { calls }) => assert_eq!(calls[0].event_id(), 3),
            other => panic!("{other:?}"),
        }
        let mut r = &buf[..];
        let again: Option<ToHost> = read_frame_async(&mut r).await.expect("read");
        assert!(again.is_some());
    }
}
