//! What in a week's entries concerns one member, as the facts her notification plan and inbox
//! read: feedback on her work, replies to her, ratings of her feedback, the reviews she still owes.

use std::collections::HashSet;

use crate::domain::notifications::{Happening, HappeningKind};

use super::projection::WeekRows;

/// Her news in one week: what others did that concerns her.
pub fn week_news(me: &str, rows: &WeekRows) -> Vec<Happening> {
    let by_others = |author: &str, retracted: bool| author != me && !retracted;
    let mut news = Vec::new();
    let my_work: HashSet<&str> =
        rows.submissions.iter().filter(|s| s.meta.author == me).map(|s| s.meta.key.as_str()).collect();
    for f in rows.feedback.iter().filter(|f| my_work.contains(f.submission.as_str())) {
        if by_others(&f.meta.author, f.meta.retracted) {
            let title = rows.submissions.iter().find(|s| s.meta.key == f.submission).map(|s| s.title.clone());
            news.push(Happening {
                key: f.meta.key.clone(),
                author: f.meta.author.clone(),
                created_at: f.meta.created_at,
                what: HappeningKind::FeedbackOnMyWork { submission_title: title.unwrap_or_default() },
            });
        }
    }
    let my_feedback: HashSet<&str> =
        rows.feedback.iter().filter(|f| f.meta.author == me).map(|f| f.meta.key.as_str()).collect();
    let my_replies: HashSet<&str> =
        rows.replies.iter().filter(|r| r.meta.author == me).map(|r| r.meta.key.as_str()).collect();
    for r in &rows.replies {
        let to_me = match &r.parent {
            Some(parent) => my_replies.contains(parent.as_str()),
            None => my_feedback.contains(r.feedback.as_str()),
        };
        if to_me && by_others(&r.meta.author, r.meta.retracted) {
            news.push(Happening {
                key: r.meta.key.clone(),
                author: r.meta.author.clone(),
                created_at: r.meta.created_at,
                what: HappeningKind::ReplyToMe { excerpt: r.body.chars().take(120).collect() },
            });
        }
    }
    for r in rows.ratings.iter().filter(|r| r.counted && my_feedback.contains(r.feedback.as_str())) {
        news.push(Happening {
            key: r.meta.key.clone(),
            author: r.meta.author.clone(),
            created_at: r.meta.created_at,
            what: HappeningKind::RatingOfMyFeedback { feedback: r.feedback.clone(), score: r.score },
        });
    }
    news
}

/// How many of the week's submissions she is assigned to review (`i_review`: their authors)
/// still lack her feedback.
pub fn reviews_owed(me: &str, rows: &WeekRows, i_review: &[String]) -> u32 {
    rows.submissions
        .iter()
        .filter(|s| !s.meta.retracted && i_review.contains(&s.meta.author))
        .filter(|s| !rows.feedback.iter().any(|f| f.submission == s.meta.key && f.meta.author == me))
        .count() as u32
}
