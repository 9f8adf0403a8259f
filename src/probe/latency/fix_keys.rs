//! The latency probe's FIX keys (`transport = "fix"`): the `fix+tcp://` / `fix+tls://` URL,
//! the session (`fix_version`, `sender_comp_id`, `target_comp_id`, `heartbeat`,
//! `reset_seq_num`, `username`, `password`), the NewOrderSingle template (`order`) and
//! `until`, validated into a [`FixWire`]; the session keys are shared with the soak's order
//! monitor. HTTP and WebSocket keys with FIX, and FIX keys with them, are errors: a key that
//! does nothing must not look as if it did.

use std::time::Duration;

use super::RawLatencyProbe;
use crate::fix::tag;
use crate::order::fix::{FixWire, Until};
use crate::order::keys::{order_template, session_keys};
use crate::probe::{FieldError, Validator, refuse_keys};

impl RawLatencyProbe {
    /// With HTTP or WebSocket, none of the FIX keys.
    pub(super) fn no_fix_keys(&self) -> Result<(), FieldError> {
        let mut fix_keys = session_keys!(self).given().to_vec();
        fix_keys.extend([
            ("order", self.order.is_some()),
            ("until", self.until.is_some()),
        ]);
        refuse_keys(&fix_keys, "applies only to transport = \"fix\"")
    }

    /// The FIX wire: the session and the order template; HTTP and WebSocket keys are errors.
    pub(super) fn fix_wire(&self, v: &mut Validator) -> Result<FixWire, FieldError> {
        let other_keys = [
            ("http_version", self.http_version.is_some()),
            ("method", self.method.is_some()),
            ("headers", !self.headers.is_empty()),
            ("body", self.body.is_some()),
            ("match", self.match_response.is_some()),
            ("match_request", self.match_request.is_some()),
            ("status", self.status.is_some()),
            ("body_contains", self.body_contains.is_some()),
            ("json_pointer", self.json_pointer.is_some()),
            ("json_equals", self.json_equals.is_some()),
            ("json_one_of", self.json_one_of.is_some()),
        ];
        refuse_keys(
            &other_keys,
            "does not apply to transport = \"fix\" (the order is `order`, its answer an ExecutionReport)",
        )?;
        let session = session_keys!(self).validate(&mut v.redactor)?;
        let (order, tags) = order_template(&mut v.redactor, "order", self.order.as_deref())?;
        let until = match self.until.as_deref() {
            None | Some("ack") => Until::Ack,
            Some("fill") => Until::Fill,
            Some(other) => {
                return Err(FieldError::new(
                    "until",
                    format!("expected \"ack\" or \"fill\", found \"{other}\""),
                ));
            }
        };
        Ok(FixWire {
            session,
            order,
            transact_time: !tags.contains(&tag::TRANSACT_TIME),
            until,
            timeout: Duration::from_secs(10),
        })
    }
}
