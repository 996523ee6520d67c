//! Remembers commands by id so a redelivered command is never carried out twice: one still
//! running is only acknowledged again, a finished one gets its recorded answer again.

use std::collections::{HashMap, HashSet, VecDeque};

use streamspace_protocol::AgentMessage;
use uuid::Uuid;

/// Finished answers kept for redelivery; older ones are forgotten (the control plane stops
/// redelivering a command once it has an answer, so only recent ones matter).
const REMEMBERED: usize = 4096;

/// What to do with an incoming command.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// First time: acknowledge and carry it out.
    New,
    /// Already running: acknowledge again, do nothing else.
    Running,
    /// Already answered: send this answer again.
    Answered(AgentMessage),
}

/// The record of commands.
#[derive(Debug, Default)]
pub struct CommandBook {
    running: HashSet<Uuid>,
    answers: HashMap<Uuid, AgentMessage>,
    order: VecDeque<Uuid>,
}

impl CommandBook {
    /// Classifies a command and, if new, marks it running.
    pub fn begin(&mut self, id: Uuid) -> Seen {
        if let Some(answer) = self.answers.get(&id) {
            return Seen::Answered(answer.clone());
        }
        if !self.running.insert(id) {
            return Seen::Running;
        }
        Seen::New
    }

    /// Records a command's answer.
    pub fn finish(&mut self, id: Uuid, answer: AgentMessage) {
        self.running.remove(&id);
        if self.answers.insert(id, answer).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.answers.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_runs_once_and_its_answer_is_replayed() {
        let mut book = CommandBook::default();
        let id = Uuid::from_u128(7);
        assert_eq!(book.begin(id), Seen::New);
        assert_eq!(book.begin(id), Seen::Running);
        let answer = AgentMessage::Failed {
            command_id: id,
            error: "boom".into(),
        };
        book.finish(id, answer.clone());
        assert_eq!(book.begin(id), Seen::Answered(answer));
    }

    #[test]
    fn old_answers_are_forgotten_beyond_the_limit() {
        let mut book = CommandBook::default();
        for n in 0..(REMEMBERED as u128 + 10) {
            let id = Uuid::from_u128(n);
            book.begin(id);
            book.finish(id, AgentMessage::Ack { command_id: id });
        }
        assert_eq!(book.begin(Uuid::from_u128(0)), Seen::New);
        assert!(matches!(
            book.begin(Uuid::from_u128(REMEMBERED as u128 + 9)),
            Seen::Answered(_)
        ));
    }
}
