package ipc

import (
	"net"
	"syscall"
	"unsafe"
)

// peerCred returns the credentials of the process that connected, as the
// kernel recorded them at connect(2) (SO_PEERCRED).
func peerCred(nc *net.UnixConn) (peer, error) {
	rc, err := nc.SyscallConn()
	if err != nil {
		return peer{}, err
	}
	var cred *syscall.Ucred
	var serr error
	if err := rc.Control(func(fd uintptr) {
		cred, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return peer{}, err
	}
	if serr != nil {
		return peer{}, serr
	}
	return peer{uid: cred.Uid, gid: cred.Gid, pid: cred.Pid}, nil
}

// inq returns the bytes queued in the socket's receive buffer, not yet
// read (SIOCINQ), or 0 when they cannot be counted.
func inq(nc *net.UnixConn) int {
	rc, err := nc.SyscallConn()
	if err != nil {
		return 0
	}
	var n int32
	var errno syscall.Errno
	if err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&n)))
	}); err != nil || errno != 0 || n < 0 {
		return 0
	}
	return int(n)
}
