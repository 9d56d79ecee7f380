#!/usr/bin/env python3
"""console-recv.py SOCKET OUT [INPUT...]: the --console-socket end for the tests.

Listens on SOCKET (creates SOCKET.ready once listening), accepts one connection,
receives the terminal master fd (SCM_RIGHTS) and writes to OUT:
  "pty=N"             the fd is a pty master (TIOCGPTN answered N), else "notpty"
  "rows=R cols=C"     its window size
then writes each INPUT argument (with \\n unescaped, 0.3 s apart) to the master ("@winsize=R,C":
sets its size instead, and waits 1.5 s) and
appends everything read from it until EIO/EOF (the slave side closed) or 45 s of silence (a loaded machine boots VMs slowly)."""
import fcntl, os, select, socket, struct, sys, termios, time

path, out = sys.argv[1], sys.argv[2]
inputs = [a.encode().decode("unicode_escape").encode() for a in sys.argv[3:]]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(1)
open(path + ".ready", "w").close()
s.settimeout(30)
res = []
try:
    c, _ = s.accept()
    _, fds, _, _ = socket.recv_fds(c, 4096, 4)
except Exception as e:
    open(out, "w").write("recv failed: %r\n" % e)
    sys.exit(1)
fd = fds[0]
try:
    n = struct.unpack("I", fcntl.ioctl(fd, 0x80045430, b"\0" * 4))[0]
    res.append("pty=%d" % n)
except OSError:
    res.append("notpty")
try:
    rows, cols = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))[:2]
    res.append("rows=%d cols=%d" % (rows, cols))
except OSError:
    pass
with open(out, "w") as f:
    f.write("\n".join(res) + "\n")
data = b""
for i in inputs:
    time.sleep(0.3)
    if i.startswith(b"@winsize="):  # resize the terminal (TIOCSWINSZ), then let it settle
        rows, cols = map(int, i[9:].split(b","))
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        time.sleep(1.5)
    else:
        os.write(fd, i)
while True:
    r, _, _ = select.select([fd], [], [], 45)
    if not r:
        break
    try:
        d = os.read(fd, 4096)
    except OSError:
        break
    if not d:
        break
    data += d
with open(out, "a") as f:
    f.write(data.decode(errors="replace").replace("\r", ""))
    f.write("\n--eof--\n")
