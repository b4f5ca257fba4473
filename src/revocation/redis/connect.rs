//! Connections to Redis, one server or a cluster: ordinary commands with a
//! short response timeout, and the follower's blocking reads with one that
//! outlasts the block.

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use std::time::Duration;

use crate::config::RevocationConfig;

/// How long one blocking read waits for news.
pub(super) const BLOCK: Duration = Duration::from_secs(2);
/// Response timeout of ordinary commands.
pub(super) const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);

/// Where Redis is: one server or a cluster.
#[derive(Clone)]
pub(super) enum Connector {
    Single(Box<redis::Client>),
    /// One client for commands, one whose response timeout outlasts a blocking read.
    Cluster(Box<(redis::cluster::ClusterClient, redis::cluster::ClusterClient)>),
}

/// A connection to either.
#[derive(Clone)]
pub(super) enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }
    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }
    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Connector {
    pub(super) fn new(config: &RevocationConfig) -> RedisResult<Connector> {
        if config.redis_cluster_urls.is_empty() {
            return Ok(Connector::Single(Box::new(redis::Client::open(
                config.redis_url.as_str(),
            )?)));
        }
        let build = |timeout: Duration| {
            redis::cluster::ClusterClient::builder(config.redis_cluster_urls.clone())
                .connection_timeout(COMMAND_TIMEOUT)
                .response_timeout(timeout)
                .retries(2)
                .build()
        };
        Ok(Connector::Cluster(Box::new((
            build(COMMAND_TIMEOUT)?,
            build(BLOCK + COMMAND_TIMEOUT)?,
        ))))
    }

    /// A connection for commands, or (`blocking`) one for `XREAD BLOCK` whose
    /// response timeout outlasts the block.
    pub(super) async fn connect(&self, blocking: bool) -> RedisResult<Conn> {
        let timeout = if blocking {
            BLOCK + COMMAND_TIMEOUT
        } else {
            COMMAND_TIMEOUT
        };
        match self {
            Connector::Single(client) => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(COMMAND_TIMEOUT))
                    .set_response_timeout(Some(timeout));
                Ok(Conn::Single(
                    client
                        .get_multiplexed_async_connection_with_config(&config)
                        .await?,
                ))
            }
            Connector::Cluster(clients) => {
                let client = if blocking { &clients.1 } else { &clients.0 };
                Ok(Conn::Cluster(client.get_async_connection().await?))
            }
        }
    }
}
