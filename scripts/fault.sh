#!/usr/bin/env bash
# fault.sh runs the fault suite (docs/RELIABILITY.md): the tests that kill,
# cut off, damage, race and feed bad input to rockstream. They also run in
# `make test`; this runs only them, verbosely, so that their figures (kills,
# drain times, peak memory) are printed.
#
#   scripts/fault.sh          the short form (make fault), a few minutes
#   scripts/fault.sh --long   the long form (make fault-long): ROCKSTREAM_LONG=1,
#                             100 kills of each process, MinIO down 30 s, more
#                             rounds of every race; about 6 minutes on 2 cores
#                             (372 s measured, docs/RELIABILITY.md)
#
# CI=true is set: a test that needs MinIO, db_bench or ldb fails instead of
# skipping. The output also goes to fault.log (FAULTLOG=path to change it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "${1:-}" = "--long" ]; then
	export ROCKSTREAM_LONG=1
fi
export CI=true
log="${FAULTLOG:-fault.log}"

# Each line: a package and the tests of the suite in it (a -run pattern).
suite=(
	"./cmd/rockstream/ ^(TestArchiveKill9|TestStandbyKill9|TestMinIOOutage|TestFaultyStore|TestDamage|TestTwoArchivers|TestPromotionRacesArchiver|TestTwoPromotionsRace|TestArchiveGap|TestArchiveFenced|TestHostileArchive|TestZipBomb|TestBadInputEveryCommand|TestBadInput|TestCheckS3|TestPromoteStandby|TestPromoteStopped|TestRestoreAndVerifyCLI|TestArchiveBusyStart|TestArchiveNoRetentionFullSpeed)$"
	"./archive/ ^(TestOutage|TestLostAnswer|TestGap|TestSecondArchiverFencesFirst|TestOtherWriterNeedsTakeover|TestSplitBrainCollision|TestBaseAheadOfQueuedSegments|TestBaseRetriedSoon|TestFileListRace|TestStopWhileStarting|TestGapHoleFirst|TestStopWithFullQueueOneDeadline)$"
	"./internal/foreign/ ^(TestForeignWriters)$"
	"./standby/ ^(TestCorruptSegment|TestResumeAfterTransientError|TestMissingSegment|TestRefuse)$"
	"./promote/ ^(TestPromoteRace|TestPromoteBehindLoses|TestPromoteAfterCrash|TestPromoteMarkerTaken|TestPromoteFencesArchiver|TestPromoteLostAnswer|TestPromoteInsideSegment)$"
	"./restore/ ^(TestRestoreCorruptSegment|TestRestoreMissingSegment|TestRestoreBadBaseFile|TestRestoreHostileFileList|TestRestoreBrokenTransfer|TestRestoreIntoNonEmptyDir|TestRestoreOutOfRange|TestVerifyFindsEveryDamage|TestVerifyMissingAndChangedBaseFile|TestVerifyDamagedLastSegment|TestVerifyBrokenTransfers|TestVerifyRecordedHole)$"
	"./manifest/ ^(TestHostile|TestTooManyEntries|TestLoadRefusesHugeObject|TestLoadResumesBrokenTransfer|TestUpdateConcurrent|TestCommitRace|TestAmbiguousPutIsOwnWrite)$"
	"./segments/ ^(TestEveryByteFlipIsDetected|TestEveryTruncationIsDetected|TestCutAtBlockBoundary|TestBlockSurgeryIsDetected|TestSpliceOfTwoSegmentsIsDetected|TestForeignFilesAreCorrupt|TestDecompressionBombs)$"
	"./objstore/... ^(TestFailNth|TestFlipAndCut|TestLostAnswer|TestUnreachableAndLatency|TestEvery|TestDownloadResumes|TestConcurrentDeletesInOneFolder|TestProcessRace|TestRetries|TestUnreachable|TestWrongCredentials|TestMissingBucket|TestMaxAttemptsFromEnvironment)$"
)

start=$SECONDS
status=0
: >"$log"
for entry in "${suite[@]}"; do
	pkg="${entry%% *}"
	run="${entry#* }"
	printf '\n== go test %s -run %s\n' "$pkg" "$run" | tee -a "$log"
	go test -count=1 -v -timeout 60m -run "$run" "$pkg" 2>&1 | grep -v 'level=INFO' | tee -a "$log" | grep -E '^(--- |ok|FAIL|PASS)|_test\.go:[0-9]+: ' || true
	if grep -q -E '^(FAIL|--- FAIL)' "$log"; then
		status=1
	fi
done
echo
echo "fault suite ($([ -n "${ROCKSTREAM_LONG:-}" ] && echo long || echo short)) took $((SECONDS - start))s; full output in $log"
if [ "$status" != 0 ]; then
	echo "FAILED: see the FAIL lines above" >&2
fi
exit "$status"
