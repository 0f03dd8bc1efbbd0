//! What reaches a live chat session from the control plane, as the
//! dispatcher hands it on: the user's next message, the end of the
//! session, or a drain. One channel per live chat carries these, in the
//! order they arrived; the session's thread reads it between turns.
//!
//! The text of a message is chat content: it never reaches a log line
//! above debug, so [`ChatInput`]'s `Debug` shows its size, not its words.

use std::fmt;

/// How many messages may wait for a live chat before the dispatcher
/// refuses more (a person types far fewer; a flood is dropped and logged).
pub const CHAT_QUEUE: usize = 256;

/// One message for a live chat session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatMsg {
    /// `chat.input`: the user's next message.
    Input(ChatInput),
    /// `chat.end`: the user closed the chat. Messages sent before it are
    /// still answered (they are ahead of it in the channel).
    End,
    /// The runner drains (`drain`, or a shutdown signal): the turn under
    /// way finishes, then the session ends with its result; messages
    /// still queued are answered that they were not run.
    Drain,
}

/// What the user asked for beside the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatAction {
    /// A plain message: one agent turn.
    Reply,
    /// `create_pr`: the turn (when there is text), then commit, push and
    /// open or update the PR/MR.
    CreatePr,
    /// An action this runner does not know: the text runs as a plain turn
    /// and the runner says it ignored the action.
    Unknown(String),
}

impl ChatAction {
    /// The action of a `chat.input` (`None` or an empty one: a plain reply).
    pub fn parse(action: Option<&str>) -> ChatAction {
        match action.map(str::trim) {
            None | Some("") => ChatAction::Reply,
            Some("create_pr") => ChatAction::CreatePr,
            Some(other) => ChatAction::Unknown(other.chars().take(64).collect()),
        }
    }
}

/// The user's next message.
#[derive(Clone, PartialEq, Eq)]
pub struct ChatInput {
    /// Every `chat.reply` answering it carries this id.
    pub message_id: String,
    /// What the user wrote (may be empty with `create_pr`).
    pub text: String,
    /// What the user asked for beside the text.
    pub action: ChatAction,
}

impl fmt::Debug for ChatInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Chat content stays out of every log line, even a debug one.
        f.debug_struct("ChatInput")
            .field("message_id", &self.message_id)
            .field("text_bytes", &self.text.len())
            .field("action", &self.action)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_and_a_debug_line_without_the_text() {
        assert_eq!(ChatAction::parse(None), ChatAction::Reply);
        assert_eq!(ChatAction::parse(Some(" ")), ChatAction::Reply);
        assert_eq!(ChatAction::parse(Some("create_pr")), ChatAction::CreatePr);
        assert_eq!(
            ChatAction::parse(Some("merge")),
            ChatAction::Unknown("merge".into())
        );
        let input = ChatInput {
            message_id: "m-1".into(),
            text: "my secret plan".into(),
            action: ChatAction::Reply,
        };
        let shown = format!("{input:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("m-1") && shown.contains("14"), "{shown}");
    }
}
