//! A TCP proxy in front of PostgreSQL that a test can cut: while down it closes every proxied
//! connection and refuses new ones (counting the refusals, so a test can wait until the
//! pipeline has noticed the outage instead of sleeping), then lets connections through again.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The running proxy.
pub struct Proxy {
    /// Local port.
    pub port: u16,
    down: watch::Sender<bool>,
    refused: Arc<AtomicUsize>,
}

impl Proxy {
    /// Proxies 127.0.0.1:{port} → `target` (`host:port`).
    pub async fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (down, _) = watch::channel(false);
        let refused = Arc::new(AtomicUsize::new(0));
        let (tx, r, target) = (down.clone(), refused.clone(), target.to_owned());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *tx.borrow() {
                    r.fetch_add(1, Ordering::SeqCst);
                    drop(client);
                    continue;
                }
                let mut rx = tx.subscribe();
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = rx.wait_for(|d| *d) => {}
                    }
                });
            }
        });
        Proxy {
            port,
            down,
            refused,
        }
    }

    /// A PostgreSQL URL through the proxy.
    pub fn postgres_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/test", self.port)
    }

    /// Cuts (true) or restores (false) the database.
    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }

    /// Connection attempts refused so far.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}
