//! The server's work off the request path: the one-household check workers
//! ([`checks`]), the job worker ([`jobs`]) and the schedule with retention
//! ([`schedule`]). Each takes the server's shared state and stops with the server.

pub mod checks;
pub mod jobs;
pub mod schedule;
