//! The C side: the `pam_sm_*` entry points libpam calls, [`RawHandle`] (the `PamHandle` trait
//! over a real `pam_handle_t`), the conversation, and [`SocketAgent`] (the `Agent` trait over
//! the agent's socket). All of the module's unsafe code is in this file.
//!
//! Every entry point runs its work inside `catch_unwind`: a panic becomes PAM_SYSTEM_ERR (a
//! failed login, logged), never an unwind into libpam, which would abort the process. Symbols
//! of libpam (`pam_get_user`, ...) are resolved from the process that loads the module, as for
//! every PAM module.

use super::chauthtok;
use super::codes::*;
use super::logic::{self, Agent, Item, PamHandle};
use super::options::Options;
use gatehouse_local::client::Asker;
use gatehouse_local::{LocalRequest, LocalResponse, PasswordAging};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use zeroize::Zeroizing;

/// `pam_handle_t`, opaque.
#[repr(C)]
pub struct pam_handle_t {
    _private: [u8; 0],
}

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = unsafe extern "C" fn(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int;

#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

extern "C" {
    fn pam_get_user(
        pamh: *mut pam_handle_t,
        user: *mut *const c_char,
        prompt: *const c_char,
    ) -> c_int;
    fn pam_get_item(pamh: *const pam_handle_t, item_type: c_int, item: *mut *const c_void)
        -> c_int;
    fn pam_set_item(pamh: *mut pam_handle_t, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_syslog(pamh: *const pam_handle_t, priority: c_int, fmt: *const c_char, ...);
    fn pam_set_data(
        pamh: *mut pam_handle_t,
        name: *const c_char,
        data: *mut c_void,
        cleanup: Option<unsafe extern "C" fn(*mut pam_handle_t, *mut c_void, c_int)>,
    ) -> c_int;
    fn pam_get_data(
        pamh: *const pam_handle_t,
        name: *const c_char,
        data: *mut *const c_void,
    ) -> c_int;
}

/// The module data name under which `authenticate` keeps the password's age for
/// `acct_mgmt` (a `Box<Option<PasswordAging>>`).
const AGING_DATA: &CStr = c"gatehouse_password_aging";

/// Frees what [`AGING_DATA`] holds when PAM ends (or replaces) it.
///
/// # Safety
/// `data` is NULL or a pointer made by `Box::into_raw` in `keep_aging`, freed only here.
unsafe extern "C" fn drop_aging(_pamh: *mut pam_handle_t, data: *mut c_void, _status: c_int) {
    if !data.is_null() {
        // SAFETY: per the contract above, this is the one owner of the box.
        drop(unsafe { Box::from_raw(data.cast::<Option<PasswordAging>>()) });
    }
}

/// A real PAM handle, valid for the duration of one `pam_sm_*` call.
struct RawHandle {
    pamh: *mut pam_handle_t,
    silent: bool,
}

/// Copies a C string the caller owns into Rust; `None` for NULL or non-UTF-8.
///
/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string valid for this call.
unsafe fn owned(ptr: *const c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-NULL and NUL-terminated, per the caller.
    unsafe { CStr::from_ptr(ptr) }
        .to_str()
        .ok()
        .map(str::to_owned)
}

impl RawHandle {
    fn raw_item(&self, item_type: c_int) -> *const c_void {
        let mut item: *const c_void = std::ptr::null();
        // SAFETY: `pamh` is the live handle of this call; pam_get_item writes one pointer.
        let rc = unsafe { pam_get_item(self.pamh, item_type, &mut item) };
        if rc == PAM_SUCCESS {
            item
        } else {
            std::ptr::null()
        }
    }

    /// Runs the conversation with one message; returns the answer text, if any (a password,
    /// for a prompt: copied once into memory wiped on drop, and the application's copy wiped
    /// before it is freed).
    fn converse(&self, style: c_int, text: &str) -> Result<Option<Zeroizing<String>>, i32> {
        let conv = self.raw_item(PAM_CONV).cast::<PamConv>();
        // SAFETY: PAM_CONV, when set, is a `struct pam_conv` the application keeps alive.
        let Some(conv) = (unsafe { conv.as_ref() }) else {
            return Err(PAM_CONV_ERR);
        };
        let Some(function) = conv.conv else {
            return Err(PAM_CONV_ERR);
        };
        let text = CString::new(text.replace('\0', " ")).map_err(|_| PAM_CONV_ERR)?;
        let message = PamMessage {
            msg_style: style,
            msg: text.as_ptr(),
        };
        let mut messages = [&message as *const PamMessage];
        let mut response: *mut PamResponse = std::ptr::null_mut();
        // SAFETY: one valid message (kept alive across the call); the application allocates
        // `response` with malloc, which we free below.
        let rc = unsafe { function(1, messages.as_mut_ptr(), &mut response, conv.appdata_ptr) };
        if rc != PAM_SUCCESS {
            return Err(PAM_CONV_ERR);
        }
        if response.is_null() {
            return Ok(None);
        }
        // SAFETY: a non-NULL response is one malloc'd `pam_response` whose `resp` is NULL or
        // a malloc'd string; both are ours to wipe and free.
        unsafe {
            let resp = (*response).resp;
            let answer = owned(resp).map(Zeroizing::new);
            if !resp.is_null() {
                let len = libc::strlen(resp);
                std::ptr::write_bytes(resp, 0, len);
                libc::free(resp.cast());
            }
            libc::free(response.cast());
            Ok(answer)
        }
    }
}

impl RawHandle {
    /// Sets PAM_AUTHTOK or PAM_OLDAUTHTOK; our copy of the string is wiped.
    fn set_token(&mut self, item_type: c_int, password: &str) -> Result<(), i32> {
        // CString::new from a &str allocates once, with room for the NUL.
        let token = CString::new(password).map_err(|_| PAM_AUTH_ERR)?;
        // SAFETY: live handle; PAM copies the string.
        let rc = unsafe { pam_set_item(self.pamh, item_type, token.as_ptr().cast()) };
        drop(Zeroizing::new(token.into_bytes()));
        if rc == PAM_SUCCESS {
            Ok(())
        } else {
            Err(rc)
        }
    }
}

impl PamHandle for RawHandle {
    fn user(&mut self) -> Result<String, i32> {
        let mut user: *const c_char = std::ptr::null();
        // SAFETY: live handle; pam_get_user writes one pointer to a string PAM owns.
        let rc = unsafe { pam_get_user(self.pamh, &mut user, std::ptr::null()) };
        if rc != PAM_SUCCESS {
            return Err(rc);
        }
        // SAFETY: on success `user` is NULL or a NUL-terminated string owned by PAM.
        unsafe { owned(user) }.ok_or(PAM_USER_UNKNOWN)
    }

    fn item(&self, item: Item) -> Option<String> {
        let item_type = match item {
            Item::Service => PAM_SERVICE,
            Item::Rhost => PAM_RHOST,
            Item::Ruser => PAM_RUSER,
            Item::Tty => PAM_TTY,
        };
        // SAFETY: string items are NULL or NUL-terminated strings owned by PAM.
        unsafe { owned(self.raw_item(item_type).cast()) }
    }

    fn authtok(&self) -> Option<Zeroizing<String>> {
        // SAFETY: PAM_AUTHTOK is NULL or a NUL-terminated string owned by PAM; `owned` makes
        // one exact-size copy, wrapped at once.
        unsafe { owned(self.raw_item(PAM_AUTHTOK).cast()) }.map(Zeroizing::new)
    }

    fn set_authtok(&mut self, password: &str) -> Result<(), i32> {
        self.set_token(PAM_AUTHTOK, password)
    }

    fn old_authtok(&self) -> Option<Zeroizing<String>> {
        // SAFETY: as for PAM_AUTHTOK.
        unsafe { owned(self.raw_item(PAM_OLDAUTHTOK).cast()) }.map(Zeroizing::new)
    }

    fn set_old_authtok(&mut self, password: &str) -> Result<(), i32> {
        self.set_token(PAM_OLDAUTHTOK, password)
    }

    fn prompt_password(&mut self, prompt: &str) -> Result<Zeroizing<String>, i32> {
        self.converse(PAM_PROMPT_ECHO_OFF, prompt)?
            .ok_or(PAM_CONV_ERR)
    }

    fn message(&mut self, error: bool, text: &str) {
        if !self.silent {
            let style = if error { PAM_ERROR_MSG } else { PAM_TEXT_INFO };
            let _ = self.converse(style, text);
        }
    }

    fn keep_aging(&mut self, aging: Option<PasswordAging>) {
        let data = Box::into_raw(Box::new(aging)).cast::<c_void>();
        // SAFETY: live handle; PAM owns `data` from here on and frees it with `drop_aging`
        // (also when it replaces an earlier value under the same name).
        let rc = unsafe { pam_set_data(self.pamh, AGING_DATA.as_ptr(), data, Some(drop_aging)) };
        if rc != PAM_SUCCESS {
            // SAFETY: PAM did not take it: still ours alone.
            unsafe { drop_aging(self.pamh, data, rc) };
        }
    }

    fn kept_aging(&self) -> Option<PasswordAging> {
        let mut data: *const c_void = std::ptr::null();
        // SAFETY: live handle; pam_get_data writes one pointer.
        let rc = unsafe { pam_get_data(self.pamh, AGING_DATA.as_ptr(), &mut data) };
        if rc != PAM_SUCCESS || data.is_null() {
            return None;
        }
        // SAFETY: only `keep_aging` sets this name, with a live `Box<Option<PasswordAging>>`.
        unsafe { *data.cast::<Option<PasswordAging>>() }
    }

    fn log(&self, text: &str) {
        let Ok(text) = CString::new(text.replace('\0', " ")) else {
            return;
        };
        // SAFETY: live handle; a constant "%s" format with one C string argument.
        unsafe { pam_syslog(self.pamh, libc::LOG_NOTICE, c"%s".as_ptr(), text.as_ptr()) };
    }
}

/// The agent behind its socket.
struct SocketAgent(Asker);

impl Agent for SocketAgent {
    fn ask(&self, request: &LocalRequest) -> Result<LocalResponse, String> {
        self.0.ask(request).map_err(|e| e.to_string())
    }
}

/// The module's arguments as strings (invalid UTF-8 becomes an argument that fails parsing).
///
/// # Safety
/// `argv` holds `argc` NUL-terminated strings, as libpam passes them.
unsafe fn arguments(argc: c_int, argv: *const *const c_char) -> Vec<String> {
    let count = usize::try_from(argc).unwrap_or(0);
    if argv.is_null() {
        return Vec::new();
    }
    (0..count)
        .map(|i| {
            // SAFETY: `i < argc` entries, each a C string, per the caller.
            unsafe { owned(*argv.add(i)) }.unwrap_or_else(|| "<not UTF-8>".to_string())
        })
        .collect()
}

/// A stage's decision, given libpam's `flags` too (the password stage reads its pass there).
type Decide = fn(&mut RawHandle, &SocketAgent, &Options, c_int) -> i32;

/// Parses the arguments, builds the handle and agent, runs `decide`, and turns a panic into
/// PAM_SYSTEM_ERR.
///
/// # Safety
/// The `pam_sm_*` contract: a live handle and `argc` argument strings.
unsafe fn run(
    pamh: *mut pam_handle_t,
    flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
    decide: Decide,
) -> c_int {
    if pamh.is_null() {
        return PAM_SYSTEM_ERR;
    }
    // SAFETY: forwarded from the caller's contract.
    let args = unsafe { arguments(argc, argv) };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut handle = RawHandle {
            pamh,
            silent: flags & PAM_SILENT != 0,
        };
        let options = match Options::parse(args.iter().map(String::as_str)) {
            Ok(options) => options,
            Err(why) => {
                handle.log(&format!("pam_gatehouse: {why}"));
                return PAM_SERVICE_ERR;
            }
        };
        let mut asker = Asker::new(&options.socket);
        asker.timeout = options.timeout;
        let agent = SocketAgent(asker);
        decide(&mut handle, &agent, &options, flags)
    }));
    outcome.unwrap_or(PAM_SYSTEM_ERR)
}

/// # Safety
/// Called by libpam with a live handle and `argc` argument strings.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_authenticate(
    pamh: *mut pam_handle_t,
    flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    // SAFETY: forwarded from libpam.
    unsafe {
        run(pamh, flags, argc, argv, |h, a, o, _| {
            logic::authenticate(h, a, o)
        })
    }
}

/// # Safety
/// Called by libpam with a live handle and `argc` argument strings.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_acct_mgmt(
    pamh: *mut pam_handle_t,
    flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    // SAFETY: forwarded from libpam.
    unsafe {
        run(pamh, flags, argc, argv, |h, a, o, _| {
            logic::acct_mgmt(h, a, o)
        })
    }
}

/// # Safety
/// Called by libpam with a live handle and `argc` argument strings.
#[no_mangle]
pub unsafe extern "C" fn pam_sm_chauthtok(
    pamh: *mut pam_handle_t,
    flags: c_int,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    // SAFETY: forwarded from libpam.
    unsafe { run(pamh, flags, argc, argv, chauthtok::chauthtok) }
}

/// Credentials are the session's business, not Gatehouse's: nothing to set.
#[no_mangle]
pub extern "C" fn pam_sm_setcred(
    _pamh: *mut pam_handle_t,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_SUCCESS
}

/// Gatehouse takes no part in sessions.
#[no_mangle]
pub extern "C" fn pam_sm_open_session(
    _pamh: *mut pam_handle_t,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_IGNORE
}

/// Gatehouse takes no part in sessions.
#[no_mangle]
pub extern "C" fn pam_sm_close_session(
    _pamh: *mut pam_handle_t,
    _flags: c_int,
    _argc: c_int,
    _argv: *const *const c_char,
) -> c_int {
    PAM_IGNORE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_a_decision_becomes_a_failed_login_not_an_unwind() {
        // The decision panics before touching the handle, so a dangling (non-NULL) one is
        // never dereferenced.
        let pamh = std::ptr::NonNull::<pam_handle_t>::dangling().as_ptr();
        // SAFETY: `run` only passes the handle to `decide`, which never uses it.
        let code = unsafe { run(pamh, 0, 0, std::ptr::null(), |_, _, _, _| panic!("bug")) };
        assert_eq!(code, PAM_SYSTEM_ERR);
        // SAFETY: as above; a NULL handle is refused before anything else.
        let code = unsafe { run(std::ptr::null_mut(), 0, 0, std::ptr::null(), |_, _, _, _| 0) };
        assert_eq!(code, PAM_SYSTEM_ERR);
    }
}
