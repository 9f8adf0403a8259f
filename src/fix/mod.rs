//! FIX 4.2 / 4.4 tag=value sessions (FIX Session Protocol; FIX 4.4 specification, volume 2):
//! the initiator the latency probe and the soak's order monitor drive, and the acceptor the
//! paper broker serves.
//!
//! Inbound framing and tokenising come from the `refix-message` crate: its scanner delimits one
//! message at a time from the byte stream and verifies BodyLength(9) and CheckSum(10) before
//! anything reads a field, so a garbled message is a [`FixError::Garbled`] naming the reason,
//! never a silently skipped one. No lean crate serialises FIX without a dictionary-driven
//! message model, so [`codec`] writes outbound messages itself (BeginString, BodyLength,
//! MsgType, the header, the body, CheckSum: a few dozen lines). The session layer
//! ([`session`]: Logon, Heartbeat, TestRequest, sequence numbers, ResendRequest,
//! SequenceReset, Logout) is ours because no crate's session runs on a caller's stream inside
//! the load generator's single-threaded runtimes.

pub mod codec;
pub mod session;

use std::time::Duration;

pub use codec::{Fields, Reader};
pub use session::{Role, Session, SessionConfig};

/// The FIX tags this crate reads or writes, by their standard names.
pub mod tag {
    /// BeginString(8).
    pub const BEGIN_STRING: u32 = 8;
    /// BodyLength(9).
    pub const BODY_LENGTH: u32 = 9;
    /// CheckSum(10).
    pub const CHECK_SUM: u32 = 10;
    /// ClOrdID(11).
    pub const CL_ORD_ID: u32 = 11;
    /// CumQty(14).
    pub const CUM_QTY: u32 = 14;
    /// AvgPx(6).
    pub const AVG_PX: u32 = 6;
    /// ExecID(17).
    pub const EXEC_ID: u32 = 17;
    /// ExecTransType(20), FIX 4.2 only.
    pub const EXEC_TRANS_TYPE: u32 = 20;
    /// LastPx(31).
    pub const LAST_PX: u32 = 31;
    /// LastQty(32) (LastShares in FIX 4.2).
    pub const LAST_QTY: u32 = 32;
    /// BeginSeqNo(7).
    pub const BEGIN_SEQ_NO: u32 = 7;
    /// EndSeqNo(16).
    pub const END_SEQ_NO: u32 = 16;
    /// MsgSeqNum(34).
    pub const MSG_SEQ_NUM: u32 = 34;
    /// MsgType(35).
    pub const MSG_TYPE: u32 = 35;
    /// NewSeqNo(36).
    pub const NEW_SEQ_NO: u32 = 36;
    /// OrderID(37).
    pub const ORDER_ID: u32 = 37;
    /// OrderQty(38).
    pub const ORDER_QTY: u32 = 38;
    /// OrdStatus(39).
    pub const ORD_STATUS: u32 = 39;
    /// OrdType(40).
    pub const ORD_TYPE: u32 = 40;
    /// OrigClOrdID(41).
    pub const ORIG_CL_ORD_ID: u32 = 41;
    /// PossDupFlag(43).
    pub const POSS_DUP_FLAG: u32 = 43;
    /// Price(44).
    pub const PRICE: u32 = 44;
    /// RefSeqNum(45).
    pub const REF_SEQ_NUM: u32 = 45;
    /// SenderCompID(49).
    pub const SENDER_COMP_ID: u32 = 49;
    /// SendingTime(52).
    pub const SENDING_TIME: u32 = 52;
    /// Side(54).
    pub const SIDE: u32 = 54;
    /// Symbol(55).
    pub const SYMBOL: u32 = 55;
    /// TargetCompID(56).
    pub const TARGET_COMP_ID: u32 = 56;
    /// Text(58).
    pub const TEXT: u32 = 58;
    /// TimeInForce(59).
    pub const TIME_IN_FORCE: u32 = 59;
    /// TransactTime(60).
    pub const TRANSACT_TIME: u32 = 60;
    /// Account(1).
    pub const ACCOUNT: u32 = 1;
    /// EncryptMethod(98).
    pub const ENCRYPT_METHOD: u32 = 98;
    /// HeartBtInt(108).
    pub const HEART_BT_INT: u32 = 108;
    /// TestReqID(112).
    pub const TEST_REQ_ID: u32 = 112;
    /// GapFillFlag(123).
    pub const GAP_FILL_FLAG: u32 = 123;
    /// ResetSeqNumFlag(141).
    pub const RESET_SEQ_NUM_FLAG: u32 = 141;
    /// ExecType(150).
    pub const EXEC_TYPE: u32 = 150;
    /// LeavesQty(151).
    pub const LEAVES_QTY: u32 = 151;
    /// SessionRejectReason(373).
    pub const SESSION_REJECT_REASON: u32 = 373;
    /// BusinessRejectReason(380).
    pub const BUSINESS_REJECT_REASON: u32 = 380;
    /// Username(553).
    pub const USERNAME: u32 = 553;
    /// Password(554).
    pub const PASSWORD: u32 = 554;
    /// HandlInst(21), required on orders in FIX 4.2.
    pub const HANDL_INST: u32 = 21;
}

/// The MsgType(35) values of the session and order messages used here.
pub mod msg_type {
    /// Heartbeat.
    pub const HEARTBEAT: &str = "0";
    /// TestRequest.
    pub const TEST_REQUEST: &str = "1";
    /// ResendRequest.
    pub const RESEND_REQUEST: &str = "2";
    /// Reject (session level).
    pub const REJECT: &str = "3";
    /// SequenceReset.
    pub const SEQUENCE_RESET: &str = "4";
    /// Logout.
    pub const LOGOUT: &str = "5";
    /// ExecutionReport.
    pub const EXECUTION_REPORT: &str = "8";
    /// OrderCancelReject.
    pub const ORDER_CANCEL_REJECT: &str = "9";
    /// Logon.
    pub const LOGON: &str = "A";
    /// NewOrderSingle.
    pub const NEW_ORDER_SINGLE: &str = "D";
    /// OrderCancelRequest.
    pub const ORDER_CANCEL_REQUEST: &str = "F";
    /// BusinessMessageReject.
    pub const BUSINESS_MESSAGE_REJECT: &str = "j";
}

/// The FIX version of a session: its BeginString(8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `FIX.4.2`.
    Fix42,
    /// `FIX.4.4`.
    Fix44,
}

impl Version {
    /// BeginString(8): `FIX.4.2` or `FIX.4.4`.
    pub fn begin_string(self) -> &'static str {
        match self {
            Version::Fix42 => "FIX.4.2",
            Version::Fix44 => "FIX.4.4",
        }
    }

    /// `"4.2"` or `"4.4"`, as written in checklists.
    ///
    /// # Errors
    /// A message naming the accepted values.
    pub fn parse(text: &str) -> Result<Version, String> {
        match text {
            "4.2" => Ok(Version::Fix42),
            "4.4" => Ok(Version::Fix44),
            other => Err(format!("expected \"4.2\" or \"4.4\", found \"{other}\"")),
        }
    }
}

/// What can end a FIX session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FixError {
    /// The connection failed or closed.
    #[error("{0}")]
    Io(String),
    /// A message failed its BodyLength(9) or CheckSum(10) check, or is not FIX at all.
    #[error("garbled message from the counterparty ({reason}): {excerpt}")]
    Garbled {
        /// What was wrong, e.g. "CheckSum(10) does not match the bytes".
        reason: String,
        /// The start of the offending bytes, SOH shown as `|`.
        excerpt: String,
    },
    /// The counterparty refused the Logon (Logout or Reject instead of Logon).
    #[error("logon rejected by the counterparty: {0}")]
    LogonRejected(String),
    /// An inbound MsgSeqNum(34) skipped numbers (messages were lost) or went backwards.
    #[error("{0}")]
    Sequence(String),
    /// A message broke the session rules (wrong BeginString or CompID, no MsgSeqNum, …).
    #[error("{0}")]
    Protocol(String),
    /// The counterparty ended the session with a Logout.
    #[error("the counterparty logged out: {0}")]
    LoggedOut(String),
    /// Nothing arrived within the expected time.
    #[error("{0}")]
    Timeout(String),
}

/// SendingTime(52) / TransactTime(60) for now: UTCTimestamp with milliseconds,
/// `YYYYMMDD-HH:MM:SS.sss`.
pub fn utc_timestamp() -> String {
    jiff::Timestamp::now()
        .strftime("%Y%m%d-%H:%M:%S%.3f")
        .to_string()
}

/// HeartBtInt(108) in whole seconds (at least 1).
pub fn heartbeat_seconds(d: Duration) -> u64 {
    d.as_secs().max(1)
}
