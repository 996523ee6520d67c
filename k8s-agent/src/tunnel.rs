//! One actor per VNC stream on the agent: bytes from the VNC server go to the control plane
//! as DATA frames, never more than the stream's credit; bytes from the control plane are
//! written to the VNC server and credited back as they drain.

use std::sync::Arc;

use actix::prelude::*;
use bytes::Bytes;
use streamspace_protocol::{
    AgentMessage, FlowError, Frame, MAX_FRAME_PAYLOAD, RecvWindow, StreamId, data_frame_buffer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::link_codec::ROOM;
use crate::link_messages::{LinkHandle, SendData, SendFrame, SendMessage, TunnelGone};
use crate::runtime::VncStream;

/// Bytes from the control plane for the VNC server.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Data(pub Bytes);

/// The control plane drained bytes: more window for us.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Credit(pub u32);

/// The control plane closed the stream (or the link went down): stop quietly.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Close;

/// The VNC side ended or failed, or its session is gone: tell the control plane why, then
/// stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct End(pub String);

/// Bytes were written to the VNC server.
#[derive(Message)]
#[rtype(result = "()")]
struct Drained(usize);

/// The actor.
pub struct Tunnel {
    stream_id: StreamId,
    link: LinkHandle,
    vnc: Option<Box<dyn VncStream>>,
    window: u32,
    /// Our send credit, as permits the reader task waits on.
    credit: Arc<Semaphore>,
    receive: RecvWindow,
    writer: Option<mpsc::UnboundedSender<Bytes>>,
    tasks: Vec<JoinHandle<()>>,
    ended: bool,
}

impl Tunnel {
    /// A tunnel for `stream_id` over an open VNC connection, with `window` bytes of credit
    /// in each direction.
    pub fn new(
        stream_id: StreamId,
        window: u32,
        vnc: Box<dyn VncStream>,
        link: LinkHandle,
    ) -> Self {
        Tunnel {
            stream_id,
            link,
            vnc: Some(vnc),
            window,
            credit: Arc::new(Semaphore::new(window as usize)),
            receive: RecvWindow::new(window),
            writer: None,
            tasks: Vec::new(),
            ended: false,
        }
    }

    fn end(&mut self, reason: String, ctx: &mut Context<Self>) {
        if !self.ended {
            self.ended = true;
            log::info!("stream {}: {reason}", self.stream_id);
            self.link
                .message
                .do_send(SendMessage(AgentMessage::VncDisconnect {
                    stream_id: self.stream_id,
                    reason,
                }));
        }
        ctx.stop();
    }
}

impl Actor for Tunnel {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let Some(vnc) = self.vnc.take() else { return };
        let (mut read, mut write) = tokio::io::split(vnc);
        let me = ctx.address();
        let (stream_id, link, credit) = (self.stream_id, self.link.clone(), self.credit.clone());
        let reader_me = me.clone();
        self.tasks.push(tokio::spawn(async move {
            loop {
                // Wait for at least one byte of credit, then take all that is there (up to a frame).
                let Ok(first) = credit.acquire().await else {
                    return;
                };
                first.forget();
                let wanted = credit.available_permits().min(MAX_FRAME_PAYLOAD - 1);
                let extra = match credit.try_acquire_many(wanted as u32) {
                    Ok(more) if wanted > 0 => {
                        more.forget();
                        wanted
                    }
                    _ => 0,
                };
                let budget = 1 + extra;
                // Read straight behind the frame's header: no copy of the payload.
                let mut frame = data_frame_buffer(ROOM, stream_id, budget);
                let n = match read.read_buf(&mut frame).await {
                    Ok(0) => {
                        reader_me.do_send(End("VNC server closed the connection".into()));
                        return;
                    }
                    Ok(n) => n,
                    Err(e) => {
                        reader_me.do_send(End(format!("VNC connection failed: {e}")));
                        return;
                    }
                };
                credit.add_permits(budget - n);
                crate::metrics::METRICS.to_viewer(n);
                link.data.do_send(SendData(frame));
            }
        }));
        let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
        self.writer = Some(tx);
        self.tasks.push(tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                if let Err(e) = write.write_all(&bytes).await {
                    me.do_send(End(format!("writing to the VNC server failed: {e}")));
                    return;
                }
                crate::metrics::METRICS.from_viewer(bytes.len());
                me.do_send(Drained(bytes.len()));
            }
        }));
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.link.gone.do_send(TunnelGone(self.stream_id));
        Running::Stop
    }
}

impl Handler<Data> for Tunnel {
    type Result = ();

    // The writer's queue holds at most one window: the control plane may not send more
    // than we credited, and `receive` enforces that.
    fn handle(&mut self, Data(bytes): Data, ctx: &mut Context<Self>) {
        if let Err(e) = self.receive.receive(bytes.len()) {
            return self.end(format!("flow control violated: {e}"), ctx);
        }
        if let Some(writer) = &self.writer {
            let _ = writer.send(bytes);
        }
    }
}

impl Handler<Drained> for Tunnel {
    type Result = ();

    fn handle(&mut self, Drained(n): Drained, _: &mut Context<Self>) {
        if let Some(bytes) = self.receive.drain(n) {
            self.link.frame.do_send(SendFrame(
                Frame::Credit {
                    stream_id: self.stream_id,
                    bytes,
                }
                .encode(),
            ));
        }
    }
}

impl Handler<Credit> for Tunnel {
    type Result = ();

    fn handle(&mut self, Credit(bytes): Credit, ctx: &mut Context<Self>) {
        let total = self.credit.available_permits() as u64 + u64::from(bytes);
        if total > u64::from(self.window) {
            let e = FlowError::ExcessCredit {
                total,
                window: self.window,
            };
            return self.end(format!("flow control violated: {e}"), ctx);
        }
        self.credit.add_permits(bytes as usize);
    }
}

impl Handler<Close> for Tunnel {
    type Result = ();

    fn handle(&mut self, _: Close, ctx: &mut Context<Self>) {
        self.ended = true;
        ctx.stop();
    }
}

impl Handler<End> for Tunnel {
    type Result = ();

    fn handle(&mut self, End(reason): End, ctx: &mut Context<Self>) {
        self.end(reason, ctx);
    }
}
