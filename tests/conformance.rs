//! The transport conformance suite: every case of `conformance/cases.rs` on the in-memory
//! bus, on NATS (feature `nats`) and on MQTT (feature `mqtt`).
//!
//! NATS and MQTT cases use the brokers at `ORBITALIS_NATS_URL` (default
//! `nats://127.0.0.1:4222`) and `ORBITALIS_MQTT_URL` (default `mqtt://127.0.0.1:1883`); a case
//! whose broker is unreachable fails, naming the URL. `scripts/test.sh` starts both brokers.

#[path = "conformance/cases.rs"]
mod cases;
mod common;

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::cases::$case(crate::common::Harness::new(crate::common::Kind::Local)).await;
                }
            )*
        }

        #[cfg(feature = "nats")]
        mod nats {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::cases::$case(crate::common::Harness::new(crate::common::Kind::Nats)).await;
                }
            )*
        }

        #[cfg(feature = "mqtt")]
        mod mqtt {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::cases::$case(crate::common::Harness::new(crate::common::Kind::Mqtt)).await;
                }
            )*
        }
    };
}

conformance!(
    round_trip,
    wildcards,
    ordering,
    many_subscribers,
    unsubscribe_on_drop,
    empty_payload,
    max_size,
    ten_thousand,
    slow_subscriber,
    invalid_names,
    closed,
);

#[cfg(feature = "nats")]
#[path = "conformance/nats.rs"]
mod nats_only;

#[cfg(feature = "mqtt")]
#[path = "conformance/mqtt.rs"]
mod mqtt_only;
