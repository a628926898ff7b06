-- The source contract: one row per caution alert, with exactly these column names.
-- Edit this query to map your housing management system's tables and codes onto cautionflow's
-- (see "The source contract" in the README). The default reads a view named caution_alerts_export.
--
-- resident_reason is what you have decided the resident may be told of why the alert was added,
-- kept or removed (Hexagon 5.3, Karbon 5.2, Teign Appendix E); it is printed in their decision
-- letters, while note (the facts behind the alert) never leaves the register. It is optional:
-- leave it out if you record none yet, and every decision letter waits, held with "no reason
-- recorded for the resident", until a sync brings one.
--
-- contact_instruction is how to make contact safely, one line of at most 500 characters: who the
-- single point of contact is and how to reach them, the agreed contact arrangements, who approves
-- an emergency visit (e.g. "Single point of contact: Priya Shah, Tenancy Officer, 01632 960345,
-- weekdays 9-5; out of hours the duty manager"). Call handlers see it in their digests, and
-- contractors too where digests.contractors_see_instructions is true; note never leaves the
-- register. It is optional: leave it out if you record none yet. An active SPOC, CM or DNV alert
-- without one is kept and flagged "contact_instruction is missing" (their required actions defer
-- to an arrangement only the instruction gives), and the digests show the duty contact instead.
SELECT
    alert_id, alert_code, subject_type, person_ref, person_name, tenancy_ref,
    asset_ref, address, postcode, area,
    effective_from, ends_on, last_reviewed_on, review_outcome, status,
    notify_resident, no_notify_reason, notified_on,
    appeal_received_on, appeal_decided_on, appeal_outcome,
    source, note, resident_reason, contact_instruction, preferred_channel, email, language, large_print, updated_at
FROM caution_alerts_export
