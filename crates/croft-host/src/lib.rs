//! croft-host: the only crate in croft that touches the host kernel.
//!
//! Everything privileged lives here behind small, documented functions:
//! cgroups (v1 and v2), the VPS runtime (namespaces, id maps, mounts,
//! capabilities, seccomp), root filesystem preparation and the protocol the
//! per-VPS supervisor speaks on its control socket. The daemon and the CLI
//! call into it; they never issue a namespace or mount syscall themselves.

pub mod archive;
pub mod cgroup;
pub mod cmd;
pub mod fds;
pub mod lxcfs;
pub mod net;
/// The supervisor control protocol (the `croft-proto` crate).
pub use croft_proto as proto;
pub mod rootfs;
pub mod runtime;
pub mod spec;
pub mod storage;
pub mod supervise;
pub mod sysprep;
