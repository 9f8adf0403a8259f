//! `prodready sign-waiver`: an approver's signature on a `[[waiver]]`.

use std::path::Path;

use super::slug;
use crate::error::{Error, Exit, Result};
use crate::{cli, report, signoff};

/// `prodready sign-waiver CHECKLIST ITEM`: write the approver's signature over the waiver.
///
/// # Errors
/// Usage, key and I/O errors.
pub fn cmd_sign_waiver(args: cli::SignWaiverArgs) -> Result<Exit> {
    let (st, armored) =
        signoff::sign_waiver(&args.checklist, &args.item, &args.key, args.signer.clone())?;
    let dir = args.checklist.parent().unwrap_or(Path::new("."));
    let out = args.output.clone().unwrap_or_else(|| {
        dir.join("waivers")
            .join(format!("{}.sig", slug(&args.item)))
    });
    if let Some(parent) = out.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
    }
    report::write_atomic(&out, armored.as_bytes())?;
    let rel = out
        .strip_prefix(dir)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| out.clone());
    println!(
        "{}: waiver signature written; add to the [[waiver]] for \"{}\":\n  signer = \"{}\"\n  signature_file = \"{}\"",
        out.display(),
        st.item,
        st.signer,
        rel.display()
    );
    Ok(Exit::Ready)
}
