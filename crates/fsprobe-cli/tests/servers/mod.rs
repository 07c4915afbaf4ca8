//! Real servers for the fleet tests (nats-server, rsyslogd, socat), started
//! by the tests on loopback addresses with random free ports and private
//! state directories, and stopped on drop, even when a test fails.
//! scripts/setup.sh installs them from apt.
#![allow(dead_code)]

use std::io::Read;
use std::net::{TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A TCP port on 127.0.0.1 that nothing listens on now.
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A UDP port on 127.0.0.1 that nothing listens on now.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Waits until something accepts connections on 127.0.0.1:port.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} never listened on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A process that is stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Daemon {
    pub name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Daemon {
        let out = std::fs::File::create(log).expect("create server log");
        let err = out.try_clone().expect("dup server log");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} (scripts/setup.sh installs it): {e}"));
        Daemon {
            name: name.into(),
            child: Some(child),
            log: log.to_owned(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// What the server printed so far.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    /// SIGTERM, and waits (SIGKILL after 10 s).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill() with the pid of a child we have not reaped.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// nats-server with JetStream, on 127.0.0.1:port, its store in `dir`.
pub struct NatsServer {
    pub port: u16,
    dir: PathBuf,
    daemon: Option<Daemon>,
    starts: u32,
}

impl NatsServer {
    pub fn start(dir: &Path) -> NatsServer {
        let mut server = NatsServer {
            port: free_tcp_port(),
            dir: dir.to_owned(),
            daemon: None,
            starts: 0,
        };
        server.run();
        server
    }

    fn run(&mut self) {
        let mut cmd = Command::new("nats-server");
        cmd.args([
            "-a",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-js",
            "-sd",
        ])
        .arg(self.dir.join("jetstream"));
        self.starts += 1;
        let log = self.dir.join(format!("nats-server.{}.log", self.starts));
        self.daemon = Some(Daemon::spawn("nats-server", cmd, &log));
        wait_for_port(self.port, "nats-server");
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (gracefully: SIGTERM) and keeps its store.
    pub fn stop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.stop();
        }
    }

    /// Starts it again, on the same port and store.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

/// socat relaying each connection accepted on `listen` to `connect`
/// (socat address syntax), optionally inside another network namespace.
pub fn socat(name: &str, netns_of: Option<u32>, listen: &str, connect: &str, log: &Path) -> Daemon {
    let mut cmd = match netns_of {
        Some(pid) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/proc/{pid}/ns/net"))
                .arg("--")
                .arg("socat");
            c
        }
        None => Command::new("socat"),
    };
    cmd.args([listen, connect]);
    Daemon::spawn(name, cmd, log)
}

/// The network namespace of a process, as `net:[inode]`.
pub fn netns(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// rsyslogd with a private configuration: imtcp and imudp on 127.0.0.1
/// random ports, writing each message's MSG part, unchanged, as one line
/// of `dir/messages`.
pub struct Rsyslog {
    pub tcp_port: u16,
    pub udp_port: u16,
    pub messages: PathBuf,
    daemon: Daemon,
}

impl Rsyslog {
    pub fn start(dir: &Path) -> Rsyslog {
        let (tcp_port, udp_port) = (free_tcp_port(), free_udp_port());
        let messages = dir.join("messages");
        let work = dir.join("work");
        std::fs::create_dir_all(&work).expect("create rsyslog work dir");
        // maxMessageSize first: it applies to the inputs loaded after it.
        // No control-character escaping, so MSG stays byte for byte.
        let conf = format!(
            r#"global(workDirectory="{work}" maxMessageSize="64k"
       parser.escapeControlCharactersOnReceive="off")
module(load="imtcp")
module(load="imudp")
input(type="imtcp" address="127.0.0.1" port="{tcp_port}")
input(type="imudp" address="127.0.0.1" port="{udp_port}")
template(name="msg_only" type="string" string="%msg%\n")
action(type="omfile" file="{messages}" template="msg_only")
"#,
            work = work.display(),
            messages = messages.display()
        );
        let conf_path = dir.join("rsyslog.conf");
        std::fs::write(&conf_path, conf).expect("write rsyslog.conf");
        let mut cmd = Command::new("rsyslogd");
        cmd.arg("-n")
            .arg("-f")
            .arg(&conf_path)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"));
        let daemon = Daemon::spawn("rsyslogd", cmd, &dir.join("rsyslogd.log"));
        wait_for_port(tcp_port, "rsyslogd");
        Rsyslog {
            tcp_port,
            udp_port,
            messages,
            daemon,
        }
    }

    /// The lines written so far.
    pub fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(&self.messages)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Waits until `n` lines arrived (or 20 s without a new one).
    pub fn wait_for_lines(&self, n: usize) -> Vec<String> {
        let (mut last, mut since) = (0, Instant::now());
        loop {
            let lines = self.lines();
            if lines.len() >= n {
                return lines;
            }
            if lines.len() > last {
                (last, since) = (lines.len(), Instant::now());
            }
            if since.elapsed() > Duration::from_secs(20) {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log(&self) -> String {
        self.daemon.log()
    }
}

/// The `fsprobe: <name>: N records sent, ...` summary line of an output.
pub fn output_summary<'a>(stderr: &'a str, name: &str) -> &'a str {
    let prefix = format!("fsprobe: {name}: ");
    stderr
        .lines()
        .find(|l| l.starts_with(&prefix) && l.contains(" records sent, "))
        .unwrap_or_else(|| panic!("no {name} summary in:\n{stderr}"))
}

/// The number right after `label` in a summary line: `label 12`.
pub fn number_after(line: &str, label: &str) -> u64 {
    let at = line
        .find(label)
        .unwrap_or_else(|| panic!("no '{label}' in {line}"));
    line[at + label.len()..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after '{label}' in {line}"))
}

/// A Docker engine of the test's own (Debian's docker.io): dockerd with its
/// data, state and socket in `dir`, no network set up (`--bridge=none`, no
/// iptables), and its own containerd.
pub struct DockerEngine {
    pub socket: PathBuf,
    daemon: Daemon,
}

impl DockerEngine {
    pub fn start(dir: &Path) -> DockerEngine {
        let socket = dir.join("docker.sock");
        let mut cmd = Command::new("dockerd");
        cmd.arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args(["--bridge=none", "--iptables=false", "--ip6tables=false"]);
        let daemon = Daemon::spawn("dockerd", cmd, &dir.join("dockerd.log"));
        let engine = DockerEngine { socket, daemon };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !engine.docker(&["info"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "dockerd did not answer within 60 s:\n{}",
                engine.daemon.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        engine
    }

    /// `docker ARGS` against this engine.
    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run docker (scripts/setup.sh installs docker.io)")
    }

    /// `docker ARGS`, which must succeed: its stdout, trimmed.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.daemon.log()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The engine's command line, for `sh -c` pipelines.
    pub fn cli(&self) -> String {
        format!("docker -H unix://{}", self.socket.display())
    }
}
