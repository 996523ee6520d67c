//! The emulated cluster state: objects as JSON, with the bookkeeping the real API adds.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::xvnc::Xvnc;

/// The kinds served, by their URL plural.
pub const RESOURCES: &[(&str, &str)] = &[
    ("pods", "Pod"),
    ("services", "Service"),
    ("persistentvolumeclaims", "PersistentVolumeClaim"),
];

/// A failure shaped like the API server's `Status`.
#[derive(Debug, Clone)]
pub struct ApiFailure {
    /// HTTP status.
    pub code: u16,
    /// `NotFound`, `AlreadyExists`, `Invalid`, …
    pub reason: &'static str,
    /// For people.
    pub message: String,
}

impl ApiFailure {
    /// The `Status` body.
    pub fn body(&self) -> Value {
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": self.message, "reason": self.reason, "code": self.code})
    }
}

fn not_found(resource: &str, name: &str) -> ApiFailure {
    ApiFailure {
        code: 404,
        reason: "NotFound",
        message: format!("{resource} \"{name}\" not found"),
    }
}

/// Kubernetes names: RFC 1123 labels (what Services require; we hold Pods to it too).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

struct PodRuntime {
    ready_at: Instant,
    xvnc: Option<Xvnc>,
}

/// Everything in the emulated cluster.
pub struct Cluster {
    objects: BTreeMap<(String, String, String), Value>,
    pods: HashMap<(String, String), PodRuntime>,
    version: u64,
    ready_delay: Duration,
}

impl Cluster {
    /// An empty cluster.
    pub fn new(ready_delay: Duration) -> Self {
        Cluster {
            objects: BTreeMap::new(),
            pods: HashMap::new(),
            version: 1000,
            ready_delay,
        }
    }

    fn next_version(&mut self) -> String {
        self.version += 1;
        self.version.to_string()
    }

    /// Names of all objects of a resource.
    pub fn names(&self, resource: &str) -> Vec<String> {
        self.objects
            .keys()
            .filter(|(r, _, _)| r == resource)
            .map(|(_, _, n)| n.clone())
            .collect()
    }

    /// The RFB port of a running pod's desktop.
    pub fn vnc_port(&self, namespace: &str, name: &str) -> Option<u16> {
        self.pods
            .get(&(namespace.to_owned(), name.to_owned()))
            .and_then(|p| p.xvnc.as_ref())
            .map(|x| x.port)
    }

    /// Reads an object, advancing a pod's lifecycle first.
    pub fn get(
        &mut self,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiFailure> {
        if resource == "pods" {
            self.advance(namespace, name);
        }
        self.objects
            .get(&(resource.to_owned(), namespace.to_owned(), name.to_owned()))
            .cloned()
            .ok_or_else(|| not_found(resource, name))
    }

    /// Lists objects whose labels match every `key=value` of the selector.
    pub fn list(
        &mut self,
        resource: &str,
        namespace: &str,
        selector: &[(String, String)],
    ) -> Vec<Value> {
        let names: Vec<String> = self
            .objects
            .keys()
            .filter(|(r, ns, _)| r == resource && ns == namespace)
            .map(|(_, _, n)| n.clone())
            .collect();
        names
            .iter()
            .filter_map(|name| self.get(resource, namespace, name).ok())
            .filter(|object| {
                selector
                    .iter()
                    .all(|(k, v)| object["metadata"]["labels"][k].as_str() == Some(v.as_str()))
            })
            .collect()
    }

    /// Creates an object; 409 if it exists.
    pub fn create(
        &mut self,
        resource: &str,
        namespace: &str,
        object: Value,
    ) -> Result<Value, ApiFailure> {
        let name = object["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if self
            .objects
            .contains_key(&(resource.to_owned(), namespace.to_owned(), name.clone()))
        {
            return Err(ApiFailure {
                code: 409,
                reason: "AlreadyExists",
                message: format!("{resource} \"{name}\" already exists"),
            });
        }
        self.store(resource, namespace, &name, object, None)
    }

    /// Server-side apply: creates, or replaces the applied fields of, an object.
    pub fn apply(
        &mut self,
        resource: &str,
        namespace: &str,
        name: &str,
        object: Value,
        manager: &str,
    ) -> Result<Value, ApiFailure> {
        if object["metadata"]["name"].as_str() != Some(name) {
            return Err(ApiFailure {
                code: 422,
                reason: "Invalid",
                message: format!(
                    "metadata.name: Invalid value: the name of the object must match the URL ({name})"
                ),
            });
        }
        let key = (resource.to_owned(), namespace.to_owned(), name.to_owned());
        let existing = self.objects.get(&key).cloned();
        self.store(
            resource,
            namespace,
            name,
            object,
            existing.map(|e| (e, manager.to_owned())),
        )
    }

    fn store(
        &mut self,
        resource: &str,
        namespace: &str,
        name: &str,
        mut object: Value,
        existing: Option<(Value, String)>,
    ) -> Result<Value, ApiFailure> {
        if !valid_name(name) {
            let kind = RESOURCES
                .iter()
                .find(|(r, _)| *r == resource)
                .map_or("Object", |(_, k)| *k);
            return Err(ApiFailure {
                code: 422,
                reason: "Invalid",
                message: format!(
                    "{kind} \"{name}\" is invalid: metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 label \
                     must consist of lower case alphanumeric characters or '-'"
                ),
            });
        }
        let version = self.next_version();
        let metadata = &mut object["metadata"];
        metadata["namespace"] = json!(namespace);
        metadata["resourceVersion"] = json!(version);
        match &existing {
            Some((old, _)) => {
                metadata["uid"] = old["metadata"]["uid"].clone();
                metadata["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
                if let Some(status) = old.get("status") {
                    object["status"] = status.clone();
                }
            }
            None => {
                metadata["uid"] = json!(uuid::Uuid::new_v4().to_string());
                metadata["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
                if resource == "pods" {
                    object["status"] = json!({"phase": "Pending", "conditions": []});
                    self.pods.insert(
                        (namespace.to_owned(), name.to_owned()),
                        PodRuntime {
                            ready_at: Instant::now() + self.ready_delay,
                            xvnc: None,
                        },
                    );
                }
                if resource == "services" {
                    object["spec"]["clusterIP"] =
                        json!(format!("10.96.0.{}", self.version % 250 + 1));
                }
                if resource == "persistentvolumeclaims" {
                    object["status"] = json!({"phase": "Bound"});
                }
            }
        }
        self.objects.insert(
            (resource.to_owned(), namespace.to_owned(), name.to_owned()),
            object.clone(),
        );
        Ok(object)
    }

    /// Deletes an object (a pod's desktop stops with it).
    pub fn delete(
        &mut self,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiFailure> {
        let object = self
            .objects
            .remove(&(resource.to_owned(), namespace.to_owned(), name.to_owned()))
            .ok_or_else(|| not_found(resource, name))?;
        if resource == "pods" {
            self.pods.remove(&(namespace.to_owned(), name.to_owned()));
        }
        Ok(object)
    }

    /// Stops every pod's desktop (the emulator is going away).
    pub fn stop_pods(&mut self) {
        self.pods.clear();
    }

    /// Moves a pod along: scheduled, image pulled, desktop started, Ready.
    fn advance(&mut self, namespace: &str, name: &str) {
        let key = ("pods".to_owned(), namespace.to_owned(), name.to_owned());
        let Some(pod) = self.objects.get(&key) else {
            return;
        };
        if pod["status"]["phase"] == "Running" {
            return;
        }
        let image = pod["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let Some(runtime) = self.pods.get_mut(&(namespace.to_owned(), name.to_owned())) else {
            return;
        };
        let status = if image.contains("unschedulable") {
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False",
                "reason": "Unschedulable", "message": "0/1 nodes are available: 1 Insufficient memory."}]})
        } else if image.contains("missing") {
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}],
                "containerStatuses": [{"name": "desktop", "image": image, "imageID": "", "ready": false,
                    "restartCount": 0, "state": {"waiting": {"reason": "ErrImagePull",
                        "message": format!("rpc error: pull access denied for {image}")}}}]})
        } else if Instant::now() < runtime.ready_at {
            json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True"}]})
        } else {
            if runtime.xvnc.is_none() {
                match Xvnc::start("1024x768", &format!("{name} (emulated pod)")) {
                    Ok(xvnc) => runtime.xvnc = Some(xvnc),
                    Err(e) => {
                        let status = json!({"phase": "Failed", "message": format!("emulator: cannot start Xvnc: {e}")});
                        if let Some(pod) = self.objects.get_mut(&key) {
                            pod["status"] = status;
                        }
                        return;
                    }
                }
            }
            json!({"phase": "Running", "podIP": format!("10.244.0.{}", self.version % 250 + 1),
                "conditions": [{"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "desktop", "image": image, "imageID": "", "ready": true,
                    "restartCount": 0, "state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}}}]})
        };
        let version = self.next_version();
        if let Some(pod) = self.objects.get_mut(&key) {
            pod["status"] = status;
            pod["metadata"]["resourceVersion"] = json!(version);
        }
    }
}
