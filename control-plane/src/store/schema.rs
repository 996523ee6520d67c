// @generated automatically by Diesel CLI.

diesel::table! {
    agent_commands (id) {
        id -> Uuid,
        command_id -> Uuid,
        agent_id -> Text,
        session_id -> Nullable<Uuid>,
        command_type -> Text,
        payload -> Jsonb,
        status -> Text,
        result -> Nullable<Jsonb>,
        error -> Nullable<Text>,
        attempts -> Int4,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
        acked_at -> Nullable<Timestamptz>,
        completed_at -> Nullable<Timestamptz>,
        timeout_at -> Timestamptz,
    }
}

diesel::table! {
    agent_credentials (id) {
        id -> Uuid,
        agent_id -> Text,
        token_hash -> Text,
        token_prefix -> Text,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        last_used_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    agents (id) {
        id -> Uuid,
        agent_id -> Text,
        platform -> Text,
        region -> Nullable<Text>,
        status -> Text,
        capacity -> Jsonb,
        metadata -> Jsonb,
        websocket_conn_id -> Nullable<Text>,
        last_heartbeat -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        replica_id -> Nullable<Uuid>,
        active_sessions -> Int4,
        max_sessions -> Int8,
        load -> Nullable<Float8>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Int8,
        at -> Timestamptz,
        action -> Text,
        actor_user_id -> Nullable<Uuid>,
        actor_username -> Nullable<Text>,
        actor_agent_id -> Nullable<Text>,
        target_type -> Nullable<Text>,
        target_id -> Nullable<Text>,
        details -> Jsonb,
        source_ip -> Nullable<Text>,
    }
}

diesel::table! {
    homes (id) {
        id -> Uuid,
        owner_id -> Uuid,
        template_name -> Text,
        agent_id -> Text,
        state -> Text,
        state_reason -> Nullable<Text>,
        created_at -> Timestamptz,
        last_used_at -> Timestamptz,
    }
}

diesel::table! {
    recordings (id) {
        id -> Uuid,
        session_id -> Nullable<Uuid>,
        user_id -> Nullable<Uuid>,
        username -> Text,
        template -> Text,
        file -> Text,
        started_at -> Timestamptz,
        ended_at -> Nullable<Timestamptz>,
        duration_ms -> Int8,
        bytes -> Int8,
        complete -> Bool,
    }
}

diesel::table! {
    replicas (id) {
        id -> Uuid,
        address -> Text,
        started_at -> Timestamptz,
        last_seen -> Timestamptz,
        draining -> Bool,
    }
}

diesel::table! {
    session_shares (session_id, user_id) {
        session_id -> Uuid,
        user_id -> Uuid,
        mode -> Text,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    session_viewers (id) {
        id -> Uuid,
        session_id -> Uuid,
        user_id -> Uuid,
        replica_id -> Uuid,
        mode -> Text,
        ip -> Nullable<Text>,
        connected_at -> Timestamptz,
        left_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        owner_id -> Uuid,
        template_id -> Nullable<Uuid>,
        template_name -> Text,
        state -> Text,
        state_reason -> Nullable<Text>,
        resources -> Jsonb,
        persistent_home -> Bool,
        agent_id -> Nullable<Text>,
        platform -> Text,
        region -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        terminated_at -> Nullable<Timestamptz>,
        home_id -> Nullable<Uuid>,
        idle_timeout_seconds -> Nullable<Int4>,
        max_lifetime_seconds -> Nullable<Int4>,
        last_input_at -> Nullable<Timestamptz>,
        recorded -> Bool,
        spec -> Nullable<Jsonb>,
        idle_action -> Text,
    }
}

diesel::table! {
    spent_viewer_tokens (jti) {
        jti -> Uuid,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    templates (id) {
        id -> Uuid,
        name -> Text,
        display_name -> Text,
        description -> Text,
        image -> Text,
        vnc_port -> Int4,
        default_resources -> Jsonb,
        env -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        platforms -> Jsonb,
        idle_timeout_seconds -> Nullable<Int4>,
        max_lifetime_seconds -> Nullable<Int4>,
        record -> Bool,
        idle_action -> Text,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        username -> Text,
        password_hash -> Text,
        role -> Text,
        disabled -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        password_changed_at -> Timestamptz,
    }
}

diesel::joinable!(agent_commands -> sessions (session_id));
diesel::joinable!(agent_credentials -> users (created_by));
diesel::joinable!(homes -> users (owner_id));
diesel::joinable!(recordings -> sessions (session_id));
diesel::joinable!(recordings -> users (user_id));
diesel::joinable!(session_shares -> sessions (session_id));
diesel::joinable!(session_viewers -> sessions (session_id));
diesel::joinable!(session_viewers -> users (user_id));
diesel::joinable!(sessions -> homes (home_id));
diesel::joinable!(sessions -> templates (template_id));
diesel::joinable!(sessions -> users (owner_id));

diesel::allow_tables_to_appear_in_same_query!(
    agent_commands,
    agent_credentials,
    agents,
    audit_log,
    homes,
    recordings,
    replicas,
    session_shares,
    session_viewers,
    sessions,
    spent_viewer_tokens,
    templates,
    users,
);
