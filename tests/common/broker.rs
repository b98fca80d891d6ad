//! Private broker processes for tests that must stop or configure their broker: each runs
//! on a free port (never the shared 4222/1883) and is killed when dropped, however the test
//! ends. Binaries come from the PATH or /usr/sbin (`scripts/test.sh` installs them).

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::WAIT;

/// A broker process, killed when the test ends however it ends.
pub struct Broker {
    child: Child,
    program: PathBuf,
    args: Vec<String>,
    /// Where it listens, on 127.0.0.1.
    pub port: u16,
    /// Removed with the broker.
    temp: Option<PathBuf>,
}

impl Broker {
    pub fn start(name: &str, args: Vec<String>, port: u16) -> Broker {
        let program = find(name);
        let child = spawn(&program, &args);
        let mut broker = Broker { child, program, args, port, temp: None };
        broker.wait_listening();
        broker
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(&self.program, &self.args);
        self.wait_listening();
    }

    fn wait_listening(&mut self) {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let start = Instant::now();
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(start.elapsed() < WAIT, "{} does not listen on {addr} after {WAIT:?}", self.program.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        // Something else on the port would answer as well; a broker that could not bind it
        // has exited.
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status}) though {addr} answers: the port is taken", self.program.display());
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.temp {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn spawn(program: &Path, args: &[String]) -> Child {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()))
}

fn find(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found on PATH or in /usr/sbin; run scripts/test.sh, which installs it"))
}

/// A port nothing listens on, never one this test process handed out before: a broker being
/// restarted leaves its port free for a moment, and another test taking it then would find
/// the wrong broker there.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local address").port();
        if given.insert(port) {
            return port;
        }
    }
}

/// A NATS server on a free port; `config` is the text of a configuration file, if any.
pub fn nats_server(config: Option<&str>) -> Broker {
    let port = free_port();
    let mut args = vec!["-a".to_owned(), "127.0.0.1".to_owned(), "-p".to_owned(), port.to_string()];
    let file = config.map(|text| write_temp("nats.conf", text));
    if let Some(file) = &file {
        args.push("-c".to_owned());
        args.push(file.display().to_string());
    }
    let mut broker = Broker::start("nats-server", args, port);
    broker.temp = file.and_then(|f| f.parent().map(Path::to_path_buf));
    broker
}

/// A Mosquitto broker on a free port, with `extra` lines added to its configuration.
pub fn mosquitto(extra: &str) -> Broker {
    let port = free_port();
    let text = format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{extra}");
    let config = write_temp("mosquitto.conf", &text);
    let mut broker = Broker::start("mosquitto", vec!["-c".to_owned(), config.display().to_string()], port);
    broker.temp = config.parent().map(Path::to_path_buf);
    broker
}

/// Writes `text` to a new file in a fresh temporary directory, readable by a broker that
/// drops root privileges.
pub fn write_temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("busline-test-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a temporary file");
    path
}
