//! What a chat session does next: the messages the dispatcher queued for
//! it, read between turns. Messages that arrive during a turn wait in the
//! channel, in order; a drain among them is noticed as soon as the turn
//! ends, ahead of them (it is about the runner, not the conversation).

use crate::cancel::CancelToken;
use crate::job::chat::{ChatInput, ChatMsg};
use crossbeam_channel::{after, select_biased, Receiver};
use std::collections::VecDeque;
use std::time::Duration;

/// What the session does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    /// Answer this message.
    Input(ChatInput),
    /// End the session, for this reason.
    End(Ending),
    /// The job was cancelled.
    Cancelled,
}

/// Why a chat session ends without being cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// `chat.end`: the user closed the chat.
    Closed,
    /// No message for `idle_timeout_s` (or the job's own deadline came).
    Idle,
    /// The runner drains: the turn under way was finished.
    Drained,
    /// The dispatcher is gone (the runner is going down).
    Gone,
}

impl Ending {
    /// Why, in words for the result's summary.
    pub fn describe(self) -> &'static str {
        match self {
            Ending::Closed => "the user closed the chat",
            Ending::Idle => "no message came within idle_timeout_s",
            Ending::Drained => "the runner was drained",
            Ending::Gone => "the runner is shutting down",
        }
    }
}

/// The session's end of its dispatcher channel.
pub struct ChatInbox {
    rx: Receiver<ChatMsg>,
    /// Messages taken off the channel while looking for a drain.
    queue: VecDeque<ChatMsg>,
    draining: bool,
}

impl ChatInbox {
    /// The inbox over the channel the dispatcher writes.
    pub fn new(rx: Receiver<ChatMsg>) -> ChatInbox {
        ChatInbox {
            rx,
            queue: VecDeque::new(),
            draining: false,
        }
    }

    /// Take everything that arrived (during a turn), noting a drain.
    fn collect(&mut self) {
        while let Ok(msg) = self.rx.try_recv() {
            self.keep(msg);
        }
    }

    fn keep(&mut self, msg: ChatMsg) {
        match msg {
            ChatMsg::Drain => self.draining = true,
            other => self.queue.push_back(other),
        }
    }

    /// The next thing to do: a drain first, then what is queued in order,
    /// else wait up to `idle` for a message (a cancel ends the wait).
    pub fn next(&mut self, idle: Duration, cancel: &CancelToken) -> Next {
        self.collect();
        loop {
            if cancel.is_cancelled() {
                return Next::Cancelled;
            }
            if self.draining {
                return Next::End(Ending::Drained);
            }
            match self.queue.pop_front() {
                Some(ChatMsg::Input(input)) => return Next::Input(input),
                Some(ChatMsg::End) => return Next::End(Ending::Closed),
                Some(ChatMsg::Drain) => self.draining = true,
                None => break,
            }
        }
        let idle_over = after(idle);
        select_biased! {
            recv(cancel.wake_rx()) -> _ => Next::Cancelled,
            recv(self.rx) -> msg => match msg {
                Ok(msg) => {
                    self.keep(msg);
                    self.next(idle, cancel)
                }
                Err(_) => Next::End(Ending::Gone),
            },
            recv(idle_over) -> _ => Next::End(Ending::Idle),
        }
    }

    /// The messages never run because the session ended first.
    pub fn left_over(&mut self) -> Vec<ChatInput> {
        self.collect();
        self.queue
            .drain(..)
            .filter_map(|m| match m {
                ChatMsg::Input(input) => Some(input),
                ChatMsg::End | ChatMsg::Drain => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::{cancel_pair, CancelReason};
    use crate::job::chat::ChatAction;

    fn input(id: &str) -> ChatMsg {
        ChatMsg::Input(ChatInput {
            message_id: id.into(),
            text: String::new(),
            action: ChatAction::Reply,
        })
    }

    fn id_of(next: Next) -> String {
        match next {
            Next::Input(i) => i.message_id,
            other => panic!("{other:?}"),
        }
    }

    const LONG: Duration = Duration::from_secs(600);

    #[test]
    fn queued_messages_come_in_order_and_end_after_them() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut inbox = ChatInbox::new(rx);
        let never = CancelToken::never();
        for m in [input("m-1"), input("m-2"), ChatMsg::End, input("m-3")] {
            tx.send(m).expect("send");
        }
        assert_eq!(id_of(inbox.next(LONG, &never)), "m-1");
        assert_eq!(id_of(inbox.next(LONG, &never)), "m-2");
        assert_eq!(inbox.next(LONG, &never), Next::End(Ending::Closed));
        let left: Vec<String> = inbox
            .left_over()
            .into_iter()
            .map(|i| i.message_id)
            .collect();
        assert_eq!(left, ["m-3"]);
    }

    #[test]
    fn a_drain_goes_ahead_of_queued_messages() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut inbox = ChatInbox::new(rx);
        tx.send(input("m-1")).expect("send");
        tx.send(ChatMsg::Drain).expect("send");
        let never = CancelToken::never();
        assert_eq!(inbox.next(LONG, &never), Next::End(Ending::Drained));
        assert_eq!(inbox.left_over().len(), 1);
    }

    #[test]
    fn idle_cancel_and_a_closed_channel_end_the_wait() {
        let (tx, rx) = crossbeam_channel::unbounded::<ChatMsg>();
        let mut inbox = ChatInbox::new(rx);
        let never = CancelToken::never();
        assert_eq!(
            inbox.next(Duration::from_millis(1), &never),
            Next::End(Ending::Idle)
        );
        let (canceller, token) = cancel_pair();
        canceller.cancel(CancelReason::Server);
        assert_eq!(inbox.next(LONG, &token), Next::Cancelled);
        drop(tx);
        assert_eq!(inbox.next(LONG, &never), Next::End(Ending::Gone));
    }
}
