//! Where a new session goes: a plain function over the online agents.

/// An online agent that could take a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Its name.
    pub agent_id: String,
    /// `kubernetes` or `local`.
    pub platform: String,
    /// Its region.
    pub region: Option<String>,
    /// From its announced capacity.
    pub max_sessions: u32,
    /// Sessions it holds now.
    pub active: u32,
}

/// What the caller asked for.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    /// Required platform, if any.
    pub platform: Option<&'a str>,
    /// Required region, if any.
    pub region: Option<&'a str>,
    /// The platforms the template runs on (empty: any).
    pub platforms: &'a [String],
}

impl Request<'_> {
    /// Whether `agent`'s platform and region suit this request.
    pub fn allows(&self, platform: &str, region: Option<&str>) -> bool {
        self.platform.is_none_or(|p| p == platform)
            && self.region.is_none_or(|r| region == Some(r))
            && (self.platforms.is_empty() || self.platforms.iter().any(|p| p == platform))
    }
}

/// Picks the least-loaded matching agent with free capacity (ties: fewest sessions, then
/// name, so placement is deterministic). `None` means nobody can take it.
pub fn choose<'c>(candidates: &'c [Candidate], request: &Request<'_>) -> Option<&'c Candidate> {
    candidates
        .iter()
        .filter(|c| request.allows(&c.platform, c.region.as_deref()))
        .filter(|c| c.active < c.max_sessions)
        .min_by(|a, b| {
            // Compare load fractions a.active/a.max vs b.active/b.max without floats.
            let left = u64::from(a.active) * u64::from(b.max_sessions);
            let right = u64::from(b.active) * u64::from(a.max_sessions);
            left.cmp(&right)
                .then(a.active.cmp(&b.active))
                .then(a.agent_id.cmp(&b.agent_id))
        })
}

/// The 503 message when [`choose`] finds nobody, naming what was asked for.
pub fn no_agent_message(request: &Request<'_>) -> String {
    let mut message = String::from("no online agent with free capacity");
    if let Some(platform) = request.platform {
        message += &format!(" for platform {platform}");
    } else if !request.platforms.is_empty() {
        message += &format!(" for platform {}", request.platforms.join(" or "));
    }
    if let Some(region) = request.region {
        message += &format!(" in region {region}");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, platform: &str, region: &str, max: u32, active: u32) -> Candidate {
        Candidate {
            agent_id: id.into(),
            platform: platform.into(),
            region: Some(region.into()),
            max_sessions: max,
            active,
        }
    }

    #[test]
    fn picks_the_least_loaded_by_fraction_not_count() {
        let agents = [
            agent("big", "kubernetes", "eu", 100, 10),
            agent("small", "kubernetes", "eu", 4, 1),
        ];
        assert_eq!(
            choose(&agents, &Request::default()).unwrap().agent_id,
            "big"
        );
    }

    #[test]
    fn filters_by_platform_region_and_free_capacity() {
        let agents = [
            agent("full", "kubernetes", "eu", 2, 2),
            agent("us", "kubernetes", "us", 10, 0),
            agent("local", "local", "eu", 10, 0),
            agent("eu", "kubernetes", "eu", 10, 5),
        ];
        let request = Request {
            platform: Some("kubernetes"),
            region: Some("eu"),
            ..Request::default()
        };
        assert_eq!(choose(&agents, &request).unwrap().agent_id, "eu");
    }

    #[test]
    fn nobody_matching_yields_none_and_a_message_naming_the_request() {
        let agents = [agent("full", "kubernetes", "eu", 1, 1)];
        let request = Request {
            platform: Some("kubernetes"),
            region: Some("eu"),
            ..Request::default()
        };
        assert!(choose(&agents, &request).is_none());
        assert_eq!(
            no_agent_message(&request),
            "no online agent with free capacity for platform kubernetes in region eu"
        );
    }

    #[test]
    fn only_the_platforms_the_template_runs_on_are_considered() {
        let agents = [
            agent("k8s", "kubernetes", "eu", 10, 9),
            agent("local", "local", "eu", 10, 0),
        ];
        let platforms = ["kubernetes".to_owned()];
        let request = Request {
            platforms: &platforms,
            ..Request::default()
        };
        assert_eq!(choose(&agents, &request).unwrap().agent_id, "k8s");
        let full = [agent("k8s", "kubernetes", "eu", 1, 1)];
        assert!(choose(&full, &request).is_none());
        assert_eq!(
            no_agent_message(&request),
            "no online agent with free capacity for platform kubernetes"
        );
    }

    #[test]
    fn ties_break_by_name_for_determinism() {
        let agents = [
            agent("b", "local", "x", 4, 0),
            agent("a", "local", "x", 4, 0),
        ];
        assert_eq!(choose(&agents, &Request::default()).unwrap().agent_id, "a");
    }
}
