-- verdicts: the verdict of every accepted household.
-- Inputs: households, flags_found (the rows of flag_rows: in a check, the flags the run
-- collected, so the rules are not computed again; in the .slt tests, a view over
-- flag_rows), run_sources, household_stale. Output: household_id, verdict.
-- SPEC §5.7: ineligible (any disqualifying flag, even with sources missing), else
-- incomplete (any source missing or stale — for the run, or for this household because
-- its data does not reach back to D), else review (any flag), else eligible.
CREATE VIEW verdicts AS
WITH f AS (
    SELECT household_id,
           MAX(CASE WHEN severity = 'disqualifying' THEN 1 ELSE 0 END) AS disqualifying,
           COUNT(*) AS flags
    FROM flags_found
    GROUP BY household_id
),
s AS (
    SELECT COUNT(*) AS not_usable
    FROM run_sources
    WHERE status IN ('missing', 'stale')
),
hs AS (
    SELECT household_id, COUNT(*) AS stale
    FROM household_stale
    GROUP BY household_id
)
SELECT h.household_id,
       CASE
           WHEN COALESCE(f.disqualifying, 0) = 1 THEN 'ineligible'
           WHEN s.not_usable > 0 OR COALESCE(hs.stale, 0) > 0 THEN 'incomplete'
           WHEN COALESCE(f.flags, 0) > 0 THEN 'review'
           ELSE 'eligible'
       END AS verdict
FROM households h
CROSS JOIN s
LEFT JOIN f ON f.household_id = h.household_id
LEFT JOIN hs ON hs.household_id = h.household_id
