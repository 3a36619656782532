package foreign

import (
	"fmt"
	"strings"
)

// homeserverMaps are the column families of a Matrix homeserver, after
// tuwunel's src/database/maps.rs, each with the kind of descriptor it uses
// there: R (random, level compaction), S (random small: universal), Q
// (sequential: level, bigger blocks), C (a size-limited cache: FIFO with a
// TTL). The names are facts about that schema; the options are an
// approximation of its descriptors, enough to write the way it does.
var homeserverMaps = strings.Fields(`
S:alias_roomid S:alias_userid S:aliasid_alias R:authchainkey_authchain S:backupid_algorithm
S:backupid_etag S:backupkeyid_backup S:bannedroomids S:disabledroomids R:eventid_outlierpdu
R:eventid_pduid R:eventid_shorteventid S:global S:id_appserviceregistrations R:keychangeid_userid
S:keyid_key S:lazyloadedids S:logintoken_expiresatuserid S:mediaid_file S:mediaid_user
S:oauthid_session S:oauthuniqid_oauthid S:onetimekeyid_onetimekeys S:openidtoken_expiresatuserid Q:pduid_pdu
S:publicroomids S:pushkey_deviceid Q:presenceid_presence R:readreceiptid_readreceipt R:referencedevents
S:roomid_knockedcount S:roomid_invitedcount S:roomid_inviteviaservers S:roomid_joinedcount S:roomid_maxremotepowerlevel
S:roomid_pduleaves S:roomid_shortroomid S:roomid_shortstatehash C:roomid_spacehierarchy S:roomserverids
S:roomuserdataid_accountdata S:roomuserid_invitecount S:roomuserid_joined S:roomuserid_lastprivatereadupdate S:roomuserid_lastnotificationread
R:roomuserid_leftcount S:roomuserid_knockedcount S:roomuserid_privateread R:roomuseroncejoinedids S:roomusertype_roomuserdataid
S:senderkey_pusher R:server_signingkeys S:servercurrentevent_data C:servername_destination S:servername_educount
C:servername_override R:servernameevent_data S:serverroomids Q:shorteventid_authchain Q:shorteventid_eventid
Q:shorteventid_shortstatehash Q:shortstatehash_statediff S:shortstatekey_statekey S:softfailedeventids R:statehash_shortstatehash
R:statekey_shortstatekey Q:threadid_userids R:todeviceid_events S:tofrom_relation S:token_userdeviceid
R:tokenids C:url_previews S:userdeviceid_metadata S:userdeviceconnid_conn S:userdeviceid_refresh
S:userdeviceid_token S:userdevicesessionid_uiaainfo S:userdevicetxnid_response S:userfilterid_filter S:userid_avatarurl
S:userid_blurhash S:userid_dehydrateddevice S:userid_devicelistversion S:userid_displayname S:userid_lastonetimekeyupdate
S:userid_masterkeyid S:userid_oauthid R:userid_origin R:userid_password S:userid_presenceid
S:userid_selfsigningkeyid S:userid_usersigningkeyid C:useridcount_notification S:useridprofilekey_value R:userroomid_highlightcount
S:userroomid_invitestate R:userroomid_joined R:userroomid_leftstate S:userroomid_knockedstate R:userroomid_notificationcount
`)

// homeserverHot are the maps that most events write.
var homeserverHot = []string{"pduid_pdu", "eventid_pduid", "eventid_shorteventid", "shorteventid_eventid",
	"statekey_shortstatekey", "shorteventid_shortstatehash", "roomuserid_joined", "readreceiptid_readreceipt"}

// homeserverDB are the database options: tuwunel's db_opts.rs sets
// manual_wal_flush (and calls FlushWAL itself), pipelined writes,
// track_and_verify_wals_in_manifest, a WAL size limit and
// max_total_wal_size; WAL_ttl_seconds keeps flushed WAL for the archiver.
const homeserverDB = "manual_wal_flush=true;enable_pipelined_write=true;track_and_verify_wals_in_manifest=true;" +
	"WAL_size_limit_MB=1024;WAL_ttl_seconds=3600;max_total_wal_size=536870912"

// fifoTTL is the FIFO families' TTL: 30 days, so nothing expires during a
// test.
const fifoTTL = 30 * 24 * 3600

// homeserverFamilies returns the homeserver's families with their options
// strings, default first.
func homeserverFamilies() []Family {
	fams := []Family{{Name: "default", Options: "compression=kZSTD"}}
	for _, m := range homeserverMaps {
		kind, name, _ := strings.Cut(m, ":")
		fams = append(fams, Family{Name: name, Options: homeserverCF(kind)})
	}
	return fams
}

// homeserverCF is the options string of one kind of map: zstd, a block size
// of its own and small write buffers, so that WAL files rotate often.
func homeserverCF(kind string) string {
	common := "compression=kZSTD;max_write_buffer_number=2;"
	switch kind {
	case "S":
		return common + "write_buffer_size=131072;compaction_style=kCompactionStyleUniversal;" +
			"block_based_table_factory={block_size=512}"
	case "Q":
		return common + "write_buffer_size=65536;block_based_table_factory={block_size=2048}"
	case "C":
		return common + fmt.Sprintf("write_buffer_size=131072;compaction_style=kCompactionStyleFIFO;ttl=%d;", fifoTTL) +
			"compaction_options_fifo={max_table_files_size=67108864;allow_compaction=true};" +
			"block_based_table_factory={block_size=4096}"
	default:
		return common + "write_buffer_size=65536;block_based_table_factory={block_size=1024}"
	}
}
