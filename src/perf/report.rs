//! Results in Meshery's shapes: Fortio's `runnerResults` (seconds; `ActualDuration` in
//! nanoseconds) and the SMP result (milliseconds, correctly scaled from microseconds).

use hdrhistogram::Histogram;

use super::Plan;
use super::loadgen::Outcome;
use crate::models::{
    DurationHistogram, HistogramBucket, Percentile, PerfResult, PerfResultStatus, RunnerResults,
    SmpLatencies, SmpResult,
};

pub const PERCENTILES: &[f64] = &[50.0, 75.0, 90.0, 99.0, 99.9];

/// A sortable, fixed-width RFC 3339 time (stored and compared as text).
pub use crate::store::stamp;

fn secs(us: u64) -> f64 {
    us as f64 / 1_000_000.0
}

/// A histogram (µs) in Fortio's layout, in seconds, with about 20 buckets.
pub fn duration_histogram(h: &Histogram<u64>) -> DurationHistogram {
    let count = h.len();
    let empty = count == 0;
    let mut data = Vec::new();
    if !empty {
        let (min, max) = (h.min(), h.max());
        let step = ((max - min) / 20).max(1);
        let mut start = min;
        while start <= max {
            let end = start.saturating_add(step);
            let n = h.count_between(start, end.saturating_sub(1).max(start));
            if n > 0 {
                data.push(HistogramBucket {
                    start: secs(start),
                    end: secs(end),
                    percent: 100.0 * n as f64 / count as f64,
                    count: n as i64,
                });
            }
            start = end;
        }
    }
    DurationHistogram {
        count: count as i64,
        min: if empty { 0.0 } else { secs(h.min()) },
        max: if empty { 0.0 } else { secs(h.max()) },
        sum: secs((h.mean() * count as f64) as u64),
        avg: if empty { 0.0 } else { h.mean() / 1_000_000.0 },
        std_dev: if empty { 0.0 } else { h.stdev() / 1_000_000.0 },
        data,
        percentiles: PERCENTILES
            .iter()
            .map(|p| Percentile {
                percentile: *p,
                value: if empty {
                    0.0
                } else {
                    secs(h.value_at_quantile(p / 100.0))
                },
            })
            .collect(),
    }
}

pub fn result(run_id: &str, user_id: &str, plan: &Plan, o: &Outcome) -> PerfResult {
    let now = chrono::Utc::now();
    let ms = |us: u64| us as f64 / 1000.0;
    let empty = o.latency.is_empty();
    let at = |q: f64| {
        if empty {
            0.0
        } else {
            ms(o.latency.value_at_quantile(q))
        }
    };
    let end = o.start + chrono::Duration::from_std(o.elapsed).unwrap_or_default();
    let runner = RunnerResults {
        run_type: "HTTP".into(),
        labels: plan.name.clone(),
        start_time: o.start,
        requested_qps: if plan.spec.qps > 0.0 {
            plan.spec.qps.to_string()
        } else {
            "max".into()
        },
        requested_duration: format!("{:?}", plan.spec.duration),
        actual_qps: o.actual_qps(),
        actual_duration: o.elapsed.as_nanos() as i64,
        num_threads: plan.spec.connections as i64,
        duration_histogram: duration_histogram(&o.latency),
        service_time_histogram: Some(duration_histogram(&o.service)),
        ret_codes: o
            .ret_codes
            .iter()
            .map(|(k, v)| (k.to_string(), *v as i64))
            .collect(),
        errors_by_kind: o
            .errors
            .iter()
            .map(|(k, v)| (k.clone(), *v as i64))
            .collect(),
        url: plan.url.clone(),
        socket_count: o.sockets as i64,
        unsent: (plan.spec.qps > 0.0).then_some(o.unsent as i64),
        sent_late: (plan.spec.qps > 0.0).then_some(o.late as i64),
        load_generator: plan.generator.clone(),
    };
    PerfResult {
        id: run_id.to_string(),
        meshery_id: run_id.to_string(),
        user_id: user_id.to_string(),
        server_board_config: Default::default(),
        name: plan.name.clone(),
        mesh: String::new(),
        performance_profile: plan.profile_id.clone().unwrap_or_default(),
        test_id: run_id.to_string(),
        status: if o.cancelled {
            PerfResultStatus::Cancelled
        } else {
            PerfResultStatus::Completed
        },
        runner_results: runner,
        server_metrics: Default::default(),
        smp: SmpResult {
            start_time: o.start,
            end_time: end,
            actual_qps: o.actual_qps(),
            latencies_ms: SmpLatencies {
                min: if empty { 0.0 } else { ms(o.latency.min()) },
                average: if empty {
                    0.0
                } else {
                    o.latency.mean() / 1000.0
                },
                p50: at(0.5),
                p90: at(0.9),
                p99: at(0.99),
                max: if empty { 0.0 } else { ms(o.latency.max()) },
            },
        },
        test_start_time: o.start,
        created_at: now,
        updated_at: now,
    }
}
