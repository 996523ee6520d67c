//! Golden files pin the wire format: every message type, both directions.
//! `UPDATE_GOLDEN=1 cargo test -p streamspace-protocol --test golden` rewrites them after a
//! deliberate change; review the diff, since older peers still speak the old format.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use streamspace_protocol::*;
use uuid::Uuid;

const SESSION: Uuid = Uuid::from_u128(0x6f1c_2a44_8d1e_4c3b_9a53_0d6c_1e2f_3a4b);
const HOME: Uuid = Uuid::from_u128(0x2d4f_6a8b_1c3e_4f50_a7b9_c1d3_e5f7_0912);
const COMMAND: Uuid = Uuid::from_u128(0x0b6e_91f2_33c7_4d4a_8f0e_5a1b_2c3d_4e5f);

fn report() -> SessionReport {
    SessionReport {
        session_id: SESSION,
        state: AgentSessionState::Running,
        vnc: Some(VncEndpoint {
            host: "ss-6f1c2a44".into(),
            port: 5900,
        }),
        message: None,
    }
}

fn agent_samples() -> Vec<(&'static str, AgentMessage)> {
    vec![
        (
            "agent_hello",
            AgentMessage::Hello {
                protocol_version: PROTOCOL_VERSION,
                agent_id: "k8s-eu-west-1".into(),
                platform: "kubernetes".into(),
                region: Some("eu-west-1".into()),
                capacity: Capacity {
                    max_sessions: 20,
                    cpu: Some("16".into()),
                    memory: Some("64Gi".into()),
                },
                sessions: vec![report()],
                inventory_error: None,
            },
        ),
        (
            "agent_heartbeat",
            AgentMessage::Heartbeat { active_sessions: 3 },
        ),
        (
            "agent_ack",
            AgentMessage::Ack {
                command_id: COMMAND,
            },
        ),
        (
            "agent_completed",
            AgentMessage::Completed {
                command_id: COMMAND,
                result: serde_json::to_value(report()).unwrap(),
            },
        ),
        (
            "agent_failed",
            AgentMessage::Failed {
                command_id: COMMAND,
                error: "image pull failed: registry.example/desktop:1 not found".into(),
            },
        ),
        (
            "agent_session_status",
            AgentMessage::SessionStatus {
                session_id: SESSION,
                state: AgentSessionState::Failed,
                message: Some("desktop process exited with status 1".into()),
            },
        ),
        (
            "agent_inventory",
            AgentMessage::Inventory {
                sessions: vec![SessionReport {
                    session_id: SESSION,
                    state: AgentSessionState::Running,
                    vnc: None,
                    message: None,
                }],
            },
        ),
        (
            "agent_vnc_disconnect",
            AgentMessage::VncDisconnect {
                stream_id: 42,
                reason: "VNC server closed the connection".into(),
            },
        ),
        (
            "agent_goodbye",
            AgentMessage::Goodbye {
                reason: "SIGTERM".into(),
            },
        ),
    ]
}

fn control_samples() -> Vec<(&'static str, ControlMessage)> {
    let command = |command| ControlMessage::Command {
        command_id: COMMAND,
        command,
    };
    vec![
        (
            "control_welcome",
            ControlMessage::Welcome {
                protocol_version: PROTOCOL_VERSION,
                heartbeat_interval_ms: 30_000,
                stream_window: DEFAULT_STREAM_WINDOW,
            },
        ),
        (
            "control_create_session",
            command(Command::CreateSession(SessionSpec {
                session_id: SESSION,
                user: "alice".into(),
                template: TemplateSpec {
                    name: "xfce".into(),
                    image: "lscr.io/linuxserver/webtop:ubuntu-xfce".into(),
                    vnc_port: 5900,
                    env: BTreeMap::from([("TZ".to_owned(), "Europe/Paris".to_owned())]),
                },
                resources: Resources {
                    cpu: "2".into(),
                    memory: "4Gi".into(),
                },
                persistent_home: true,
                home_id: None,
            })),
        ),
        (
            "control_create_session_with_home",
            command(Command::CreateSession(SessionSpec {
                session_id: SESSION,
                user: "alice".into(),
                template: TemplateSpec {
                    name: "xfce".into(),
                    image: "streamspace/desktop:latest".into(),
                    vnc_port: 5900,
                    env: BTreeMap::new(),
                },
                resources: Resources {
                    cpu: "1".into(),
                    memory: "2Gi".into(),
                },
                persistent_home: true,
                home_id: Some(HOME),
            })),
        ),
        (
            "control_delete_home",
            command(Command::DeleteHome { home_id: HOME }),
        ),
        (
            "control_delete_session",
            command(Command::DeleteSession {
                session_id: SESSION,
                keep_home: true,
            }),
        ),
        ("control_list_sessions", command(Command::ListSessions)),
        (
            "control_get_session",
            command(Command::GetSession {
                session_id: SESSION,
            }),
        ),
        (
            "control_vnc_connect",
            command(Command::VncConnect {
                session_id: SESSION,
                stream_id: 42,
                window: DEFAULT_STREAM_WINDOW,
            }),
        ),
        (
            "control_vnc_disconnect",
            command(Command::VncDisconnect {
                stream_id: 42,
                reason: "viewer closed".into(),
            }),
        ),
        (
            "control_error",
            ControlMessage::Error {
                code: "malformed_message".into(),
                message: "expected value at line 1 column 1".into(),
            },
        ),
    ]
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.json"))
}

fn check<T>(samples: Vec<(&'static str, T)>)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    for (name, message) in samples {
        let path = golden_path(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            let text = serde_json::to_string_pretty(&message).unwrap() + "\n";
            std::fs::write(&path, text).unwrap();
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
        let golden: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            serde_json::to_value(&message).unwrap(),
            golden,
            "{name}: encoding drifted from {}",
            path.display()
        );
        let decoded: T = serde_json::from_str(&text).unwrap();
        assert_eq!(decoded, message, "{name}: decoding drifted");
    }
}

#[test]
fn agent_messages_match_their_golden_files() {
    check(agent_samples());
}

#[test]
fn control_messages_match_their_golden_files() {
    check(control_samples());
}

#[test]
fn unknown_message_types_decode_to_the_fallback_in_both_directions() {
    let text = r#"{"type":"telemetry","cpu":0.5}"#;
    assert_eq!(
        AgentMessage::from_json(text).unwrap(),
        AgentMessage::Unknown
    );
    assert_eq!(
        ControlMessage::from_json(text).unwrap(),
        ControlMessage::Unknown
    );
}

#[test]
fn a_known_type_with_missing_fields_is_malformed_not_unknown() {
    let err = AgentMessage::from_json(r#"{"type":"ack"}"#).unwrap_err();
    assert!(matches!(err, ProtocolError::Malformed(_)), "{err:?}");
    assert!(err.to_string().contains("command_id"), "{err}");
}

#[test]
fn unknown_command_actions_are_malformed() {
    let text = json!({"type": "command", "command_id": COMMAND, "command": {"action": "reboot"}});
    let err = ControlMessage::from_json(&text.to_string()).unwrap_err();
    assert!(matches!(err, ProtocolError::Malformed(_)), "{err:?}");
}

#[test]
fn oversize_text_is_refused_before_parsing() {
    let text = format!(
        r#"{{"type":"goodbye","reason":"{}"}}"#,
        "x".repeat(MAX_TEXT_MESSAGE)
    );
    assert!(matches!(
        AgentMessage::from_json(&text),
        Err(ProtocolError::TooLarge { .. })
    ));
}

#[test]
fn hello_with_an_unparseable_version_is_malformed() {
    let text = json!({"type": "hello", "protocol_version": "one", "agent_id": "a",
        "platform": "local", "capacity": {"max_sessions": 1}, "sessions": []});
    let err = AgentMessage::from_json(&text.to_string()).unwrap_err();
    assert!(err.to_string().contains("MAJOR.MINOR"), "{err}");
}

#[test]
fn command_names_are_the_wire_action_names() {
    for (_, message) in control_samples() {
        if let ControlMessage::Command { command, .. } = message {
            let value = serde_json::to_value(&command).unwrap();
            assert_eq!(value["action"], command.name());
        }
    }
}
