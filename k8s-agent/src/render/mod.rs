//! `streamspace-k8s-agent render`: prints the Kubernetes objects the agent would apply for a
//! session as a stream of YAML documents, for review or for
//! `kubectl apply --dry-run=server -f -`.

mod yaml;

use std::collections::BTreeMap;

use streamspace_protocol::{Resources, SessionSpec, TemplateSpec};
use uuid::Uuid;

use crate::runtime::kubernetes::objects::{self, Layout};

/// Renders a sample session's objects. `args` are `--flag value` pairs: `--image`, `--user`,
/// `--cpu`, `--memory`, `--vnc-port`, `--template`, `--session-id`, `--home-id`, `--env NAME=VALUE`
/// (repeatable) and `--ephemeral-home`.
pub fn render(layout: &Layout, args: &[String]) -> Result<String, String> {
    let mut spec = SessionSpec {
        session_id: Uuid::from_u128(0x5e55_1011),
        user: "user".into(),
        template: TemplateSpec {
            name: "desktop".into(),
            image: "streamspace/desktop:latest".into(),
            vnc_port: 5900,
            env: BTreeMap::new(),
        },
        resources: Resources {
            cpu: "1".into(),
            memory: "2Gi".into(),
        },
        persistent_home: true,
        home_id: Some(Uuid::from_u128(0x40e5)),
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        if flag == "--ephemeral-home" {
            spec.persistent_home = false;
            continue;
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?
            .clone();
        match flag.as_str() {
            "--image" => spec.template.image = value,
            "--user" => spec.user = value,
            "--template" => spec.template.name = value,
            "--cpu" => spec.resources.cpu = value,
            "--memory" => spec.resources.memory = value,
            "--vnc-port" => {
                spec.template.vnc_port = value
                    .parse()
                    .map_err(|_| format!("--vnc-port: {value:?} is not a port"))?
            }
            "--session-id" => {
                spec.session_id = value
                    .parse()
                    .map_err(|_| format!("--session-id: {value:?} is not a UUID"))?
            }
            "--home-id" => {
                spec.home_id = Some(
                    value
                        .parse()
                        .map_err(|_| format!("--home-id: {value:?} is not a UUID"))?,
                )
            }
            "--env" => {
                let (name, value) = value
                    .split_once('=')
                    .ok_or_else(|| format!("--env: {value:?} is not NAME=VALUE"))?;
                spec.template.env.insert(name.into(), value.into());
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let mut documents = vec![serde_json::to_value(objects::pod(layout, &spec))];
    if spec.persistent_home {
        documents.push(serde_json::to_value(objects::home_claim(layout, &spec)));
    }
    let documents: Result<Vec<serde_json::Value>, _> = documents.into_iter().collect();
    Ok(documents
        .map_err(|e| e.to_string())?
        .iter()
        .map(|doc| format!("---\n{}", yaml::to_yaml(doc)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout {
            namespace: "streamspace".into(),
            agent_id: "a".into(),
            home_size: "5Gi".into(),
            storage_class: None,
            shm_size: "1Gi".into(),
            run_as_user: 1000,
        }
    }

    #[test]
    fn renders_a_pod_and_a_claim_as_yaml_documents_or_only_the_pod_without_a_home() {
        let out = render(&layout(), &[]).unwrap();
        assert!(out.starts_with("---\napiVersion: v1\n"), "{out}");
        let kinds: Vec<&str> = out
            .lines()
            .filter_map(|line| line.strip_prefix("kind: "))
            .collect();
        assert_eq!(kinds, ["Pod", "PersistentVolumeClaim"]);
        let ephemeral = render(&layout(), &["--ephemeral-home".into()]).unwrap();
        assert_eq!(ephemeral.matches("---\n").count(), 1);
        assert!(!ephemeral.contains("PersistentVolumeClaim"));
    }

    #[test]
    fn bad_flags_are_named() {
        assert_eq!(
            render(&layout(), &["--cpu".into()]).unwrap_err(),
            "--cpu needs a value"
        );
        assert_eq!(
            render(&layout(), &["--gpu".into(), "1".into()]).unwrap_err(),
            "unknown flag --gpu"
        );
    }
}
