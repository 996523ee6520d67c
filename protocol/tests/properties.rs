//! Property tests: encode → decode is the identity, and no input panics a decoder.

use proptest::prelude::*;
use streamspace_protocol::*;
use uuid::Uuid;

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

fn text() -> impl Strategy<Value = String> {
    // Any Unicode, including quotes, escapes and control characters.
    any::<String>()
}

fn state() -> impl Strategy<Value = AgentSessionState> {
    prop_oneof![
        Just(AgentSessionState::Starting),
        Just(AgentSessionState::Running),
        Just(AgentSessionState::Stopping),
        Just(AgentSessionState::Failed),
    ]
}

fn report() -> impl Strategy<Value = SessionReport> {
    (
        uuid(),
        state(),
        proptest::option::of((text(), any::<u16>())),
        proptest::option::of(text()),
    )
        .prop_map(|(session_id, state, vnc, message)| SessionReport {
            session_id,
            state,
            vnc: vnc.map(|(host, port)| VncEndpoint { host, port }),
            message,
        })
}

fn version() -> impl Strategy<Value = ProtocolVersion> {
    (any::<u16>(), any::<u16>()).prop_map(|(major, minor)| ProtocolVersion { major, minor })
}

fn agent_message() -> impl Strategy<Value = AgentMessage> {
    prop_oneof![
        (
            version(),
            text(),
            text(),
            proptest::option::of(text()),
            (
                any::<u32>(),
                proptest::option::of(text()),
                proptest::option::of(text())
            ),
            proptest::collection::vec(report(), 0..4),
        )
            .prop_map(
                |(protocol_version, agent_id, platform, region, cap, sessions)| {
                    AgentMessage::Hello {
                        protocol_version,
                        agent_id,
                        platform,
                        region,
                        capacity: Capacity {
                            max_sessions: cap.0,
                            cpu: cap.1,
                            memory: cap.2,
                        },
                        sessions,
                        inventory_error: None,
                    }
                }
            ),
        any::<u32>().prop_map(|active_sessions| AgentMessage::Heartbeat { active_sessions }),
        uuid().prop_map(|command_id| AgentMessage::Ack { command_id }),
        (uuid(), report()).prop_map(|(command_id, r)| AgentMessage::Completed {
            command_id,
            result: serde_json::to_value(r).unwrap(),
        }),
        (uuid(), text()).prop_map(|(command_id, error)| AgentMessage::Failed { command_id, error }),
        (uuid(), state(), proptest::option::of(text())).prop_map(|(session_id, state, message)| {
            AgentMessage::SessionStatus {
                session_id,
                state,
                message,
            }
        }),
        (any::<u32>(), text())
            .prop_map(|(stream_id, reason)| AgentMessage::VncDisconnect { stream_id, reason }),
        text().prop_map(|reason| AgentMessage::Goodbye { reason }),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        (
            uuid(),
            text(),
            (text(), text(), any::<u16>()),
            proptest::collection::btree_map(text(), text(), 0..3),
            (text(), text(), any::<bool>()),
            proptest::option::of(uuid()),
        )
            .prop_map(
                |(session_id, user, t, env, r, home_id)| Command::CreateSession(SessionSpec {
                    session_id,
                    user,
                    template: TemplateSpec {
                        name: t.0,
                        image: t.1,
                        vnc_port: t.2,
                        env,
                    },
                    resources: Resources {
                        cpu: r.0,
                        memory: r.1
                    },
                    persistent_home: r.2,
                    home_id,
                })
            ),
        uuid().prop_map(|home_id| Command::DeleteHome { home_id }),
        (uuid(), any::<bool>()).prop_map(|(session_id, keep_home)| Command::DeleteSession {
            session_id,
            keep_home
        }),
        Just(Command::ListSessions),
        uuid().prop_map(|session_id| Command::GetSession { session_id }),
        (uuid(), any::<u32>(), any::<u32>()).prop_map(|(session_id, stream_id, window)| {
            Command::VncConnect {
                session_id,
                stream_id,
                window,
            }
        }),
        (any::<u32>(), text())
            .prop_map(|(stream_id, reason)| Command::VncDisconnect { stream_id, reason }),
    ]
}

fn control_message() -> impl Strategy<Value = ControlMessage> {
    prop_oneof![
        (version(), any::<u64>(), any::<u32>()).prop_map(
            |(protocol_version, heartbeat_interval_ms, stream_window)| ControlMessage::Welcome {
                protocol_version,
                heartbeat_interval_ms,
                stream_window,
            }
        ),
        (uuid(), command()).prop_map(|(command_id, command)| ControlMessage::Command {
            command_id,
            command
        }),
        (text(), text()).prop_map(|(code, message)| ControlMessage::Error { code, message }),
    ]
}

proptest! {
    #[test]
    fn agent_messages_round_trip(message in agent_message()) {
        prop_assert_eq!(AgentMessage::from_json(&message.to_json()).unwrap(), message);
    }

    #[test]
    fn control_messages_round_trip(message in control_message()) {
        prop_assert_eq!(ControlMessage::from_json(&message.to_json()).unwrap(), message);
    }

    #[test]
    fn arbitrary_text_never_panics_the_json_decoders(input in text()) {
        let _ = AgentMessage::from_json(&input);
        let _ = ControlMessage::from_json(&input);
    }

    #[test]
    fn json_shaped_garbage_never_panics_the_json_decoders(
        kind in prop_oneof![Just("hello".to_owned()), Just("ack".to_owned()), Just("command".to_owned()), Just("completed".to_owned()), text()],
        body in "[\\[\\]{}\":,0-9a-z_ -]{0,64}",
    ) {
        let input = format!(r#"{{"type":"{kind}",{body}"#);
        let _ = AgentMessage::from_json(&input);
        let _ = ControlMessage::from_json(&input);
    }

    #[test]
    fn data_frames_round_trip(stream_id in any::<u32>(),
                              payload in proptest::collection::vec(any::<u8>(), 1..2048)) {
        let bytes = Frame::Data { stream_id, payload: &payload }.encode();
        prop_assert_eq!(Frame::decode(&bytes), Ok(Frame::Data { stream_id, payload: &payload }));
    }

    #[test]
    fn reset_frames_round_trip(stream_id in any::<u32>()) {
        let encoded = Frame::Reset { stream_id }.encode();
        prop_assert_eq!(Frame::decode(&encoded), Ok(Frame::Reset { stream_id }));
    }

    #[test]
    fn credit_frames_round_trip(stream_id in any::<u32>(), bytes in 1..=u32::MAX) {
        let encoded = Frame::Credit { stream_id, bytes }.encode();
        prop_assert_eq!(Frame::decode(&encoded), Ok(Frame::Credit { stream_id, bytes }));
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_frame_decoder(
        bytes in proptest::collection::vec(any::<u8>(), 0..256)
    ) {
        if let Ok(frame) = Frame::decode(&bytes) {
            // Whatever decodes re-encodes to the same bytes: there is one encoding per frame.
            prop_assert_eq!(frame.encode(), bytes);
        }
    }

    /// Drive a sender and a receiver with random consumer speeds: the receiver never
    /// buffers more than the window, never sees a violation, and every byte arrives.
    #[test]
    fn credit_flow_bounds_buffering_and_loses_nothing(
        window in 1u32..200_000,
        total in 0usize..1_000_000,
        drains in proptest::collection::vec(1usize..100_000, 1..64),
    ) {
        let mut tx = SendWindow::new(window);
        let mut rx = RecvWindow::new(window);
        let (mut sent, mut delivered, mut step) = (0usize, 0usize, 0usize);
        while delivered < total {
            let chunk = tx.next_chunk(total - sent);
            if chunk > 0 {
                tx.spend(chunk);
                rx.receive(chunk).unwrap();
                sent += chunk;
            }
            prop_assert!(rx.buffered() <= window);
            let drain = drains[step % drains.len()].min(rx.buffered() as usize);
            step += 1;
            if drain > 0 {
                delivered += drain;
                if let Some(credit) = rx.drain(drain) {
                    tx.grant(credit).unwrap();
                }
            }
            prop_assert!(step < 10_000_000, "no progress");
        }
        prop_assert_eq!(sent, total);
    }
}
