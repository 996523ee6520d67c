//! The `portforward` subresource: WebSocket with subprotocol `v4.channel.k8s.io`, bridged to
//! the pod's real Xvnc. Channel 0 carries data, channel 1 errors; each starts with the port
//! number (little-endian), as the kubelet does.

use std::sync::Mutex;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::Message;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::objects::{ApiFailure, Cluster};

#[derive(Deserialize)]
pub(super) struct Ports {
    ports: u16,
}

pub(super) async fn handle(
    state: web::Data<Mutex<Cluster>>,
    req: HttpRequest,
    body: web::Payload,
    path: web::Path<(String, String)>,
    query: web::Query<Ports>,
) -> Result<HttpResponse, actix_web::Error> {
    let (ns, name) = path.into_inner();
    let port = query.ports;
    let target = {
        let mut cluster = state.lock().unwrap_or_else(|e| e.into_inner());
        let exists = cluster.get("pods", &ns, &name);
        match exists {
            Err(f) => return Ok(HttpResponse::NotFound().json(f.body())),
            Ok(_) => cluster.vnc_port(&ns, &name),
        }
    };
    let Some(target) = target else {
        let f = ApiFailure {
            code: 400,
            reason: "BadRequest",
            message: format!("pod {name} is not running"),
        };
        return Ok(HttpResponse::BadRequest().json(f.body()));
    };
    let (response, mut session, mut stream) =
        actix_ws::handle_with_protocols(&req, body, &["v4.channel.k8s.io"])?;
    actix_web::rt::spawn(async move {
        let [lo, hi] = port.to_le_bytes();
        let tcp = match tokio::net::TcpStream::connect(("127.0.0.1", target)).await {
            Ok(tcp) => tcp,
            Err(e) => {
                let _ = session.binary(vec![0, lo, hi]).await;
                let _ = session.binary(vec![1, lo, hi]).await;
                let _ = session
                    .binary([&[1u8][..], format!("connection refused: {e}").as_bytes()].concat())
                    .await;
                let _ = session.close(None).await;
                return;
            }
        };
        if session.binary(vec![0, lo, hi]).await.is_err()
            || session.binary(vec![1, lo, hi]).await.is_err()
        {
            return;
        }
        let (mut read, mut write) = tcp.into_split();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            tokio::select! {
                message = stream.next() => match message {
                    Some(Ok(Message::Binary(bytes))) if bytes.len() > 1 && bytes[0] == 0 => {
                        if write.write_all(&bytes[1..]).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(Message::Ping(bytes))) => {
                        let _ = session.pong(&bytes).await;
                    }
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
                read_result = read.read(&mut buffer[1..]) => match read_result {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        buffer[0] = 0;
                        if session.binary(buffer[..=n].to_vec()).await.is_err() {
                            break;
                        }
                    }
                },
            }
        }
        let _ = session.close(None).await;
    });
    Ok(response)
}
