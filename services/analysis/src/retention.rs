//! What the analysis module removes past an organization's retention (the kit's
//! [`complianceiq_kit::retention`] runs it when the setting arrives and hourly), all of one
//! organization, ended before the cutoff:
//! - analysis jobs that ended before it, with their results;
//! - sync points stored before it, except each instance's latest and any a kept job read
//!   (a replay on a removed point is refused with POINT_NOT_STORED);
//! - past record versions replaced before it that no kept point can see (a version is seen
//!   at point T when `valid_from <= T < valid_to`, so one replaced at or before every kept
//!   point is seen by none).
//!
//! Current records and running jobs stay.

/// Run in this order: results before their jobs, points after the jobs that read them,
/// versions after the points that see them.
pub const PURGE: &[(&str, &str)] = &[
    (
        "analysis_results",
        "DELETE FROM analysis_result_pages WHERE organization_id = $1 AND job_id IN ( \
           SELECT id FROM analysis_jobs WHERE organization_id = $1 AND ended_at IS NOT NULL AND ended_at < $2)",
    ),
    (
        "analysis_jobs",
        "DELETE FROM analysis_jobs WHERE organization_id = $1 AND ended_at IS NOT NULL AND ended_at < $2",
    ),
    (
        "sync_points",
        "DELETE FROM grc_sync_points WHERE organization_id = $1 AND stored_through < $2 \
           AND stored_through < (SELECT MAX(latest.stored_through) FROM grc_sync_points latest \
             WHERE latest.organization_id = $1 AND latest.instance_id = grc_sync_points.instance_id) \
           AND NOT EXISTS (SELECT 1 FROM analysis_jobs kept WHERE kept.organization_id = $1 \
             AND kept.data_as_of_sync_run_id = grc_sync_points.sync_run_id)",
    ),
    (
        "record_versions",
        "DELETE FROM grc_record_history WHERE organization_id = $1 AND valid_to < $2 \
           AND NOT EXISTS (SELECT 1 FROM grc_sync_points kept WHERE kept.organization_id = $1 \
             AND kept.instance_id = grc_record_history.instance_id \
             AND kept.stored_through < grc_record_history.valid_to)",
    ),
];
