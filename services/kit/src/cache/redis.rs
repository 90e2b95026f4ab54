use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tonic::async_trait;

use super::{Cache, CacheError};

/// Redis, through a connection manager that reconnects on its own.
pub struct RedisCache {
    connection: ConnectionManager,
    prefix: String,
}

fn failed(action: &'static str) -> impl FnOnce(redis::RedisError) -> CacheError {
    move |error| CacheError(format!("{action}: {error}"))
}

fn millis(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}

impl RedisCache {
    /// Connects; fails at once if Redis is not reachable.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, CacheError> {
        let client = redis::Client::open(url).map_err(failed("parsing the Redis URL"))?;
        // Commands wait on a reconnection in progress, so it is kept short: while Redis is
        // down a command fails within about a second rather than after the default's six
        // retries; the next command starts the next attempt.
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200))
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)));
        let connection =
            tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new_with_config(client, config))
                .await
                .map_err(|_| CacheError("connecting to Redis timed out".into()))?
                .map_err(failed("connecting to Redis"))?;
        Ok(Self { connection, prefix: prefix.to_string() })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.connection.clone().get(self.key(key)).await.map_err(failed("GET"))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), CacheError> {
        self.connection.clone().pset_ex(self.key(key), value, millis(ttl)).await.map_err(failed("SET"))
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        let stored: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut self.connection.clone())
            .await
            .map_err(failed("SET NX"))?;
        Ok(stored.is_some())
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let removed: i64 = self.connection.clone().del(self.key(key)).await.map_err(failed("DEL"))?;
        Ok(removed > 0)
    }

    async fn increment(&self, key: &str, ttl: Duration) -> Result<i64, CacheError> {
        let key = self.key(key);
        // INCR and PEXPIRE NX in one MULTI: the window starts with the first increment and
        // is never extended, and a crash between the two cannot leave a counter without expiry.
        let (count, _): (i64, i64) = redis::pipe()
            .atomic()
            .incr(&key, 1)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(millis(ttl))
            .arg("NX")
            .query_async(&mut self.connection.clone())
            .await
            .map_err(failed("INCR"))?;
        Ok(count)
    }

    async fn rate_limit_cells(
        &self,
        key: &str,
        limit: u32,
        period: Duration,
        cells: u32,
    ) -> Result<(u32, super::RateDecision), CacheError> {
        // The GCRA step runs in Redis (one script, atomic), with the server's clock, so replicas
        // never race and never disagree about time. Takes ARGV[3] cells when they fit, else one.
        // Returns {taken, remaining, reset_us, retry_us}.
        static SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
            redis::Script::new(
                r"
                local now_parts = redis.call('TIME')
                local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
                local period = tonumber(ARGV[1])
                local interval = math.max(1, math.floor(period / tonumber(ARGV[2])))
                local tat = tonumber(redis.call('GET', KEYS[1]) or now)
                if tat < now then tat = now end
                local cells = tonumber(ARGV[3])
                if cells > 1 and tat + interval * cells - period <= now then
                  local batch_tat = tat + interval * cells
                  redis.call('SET', KEYS[1], batch_tat, 'PX', math.max(1, math.ceil((batch_tat - now) / 1000)))
                  return {cells, math.floor((period - (batch_tat - now)) / interval) + cells - 1, batch_tat - now, 0}
                end
                local new_tat = tat + interval
                local allow_at = new_tat - period
                if allow_at > now then
                  return {0, 0, tat - now, allow_at - now}
                end
                redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
                return {1, math.floor((period - (new_tat - now)) / interval), new_tat - now, 0}
                ",
            )
        });
        let (taken, remaining, reset, retry): (i64, i64, i64, i64) = SCRIPT
            .key(self.key(key))
            .arg(period.as_micros() as i64)
            .arg(i64::from(limit.max(1)))
            .arg(i64::from(cells.max(1)))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(failed("rate limit script"))?;
        let decision = super::RateDecision {
            allowed: taken > 0,
            remaining: remaining.max(0) as u32,
            reset_after: Duration::from_micros(reset.max(0) as u64),
            retry_after: Duration::from_micros(retry.max(0) as u64),
        };
        Ok((taken.max(0) as u32, decision))
    }

    fn kind(&self) -> &'static str {
        "redis"
    }
}
