//! Fuzz target `frame`: any bytes from the control plane, read as text the
//! way the WebSocket thread would, never panic `parse_server_message`, and
//! a `job.assign` always hands an object on to the spec validator.

#![no_main]

use ados_work_runner::link::proto::{parse_server_message, ServerMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse_server_message(&text) {
        Ok(ServerMessage::Assign(job)) => assert!(job.is_object(), "assign of a non-object"),
        Ok(ServerMessage::Welcome { heartbeat_s, .. }) => assert!(heartbeat_s > 0),
        _ => {}
    }
});
