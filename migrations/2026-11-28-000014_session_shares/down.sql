DROP TABLE session_viewers;
DROP TABLE session_shares;
