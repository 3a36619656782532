package rocks

import (
	"fmt"
	"strings"

	"github.com/linxGnu/grocksdb"
)

// FamilyOptions returns the options of the column family name as the
// newest OPTIONS file of dbDir holds them (RocksDB writes a new one after
// CreateColumnFamily, DBImpl::WriteOptionsFile in db/db_impl/db_impl.cc), as
// "key=value;..." that grocksdb.GetOptionsFromString takes over RocksDB's
// defaults: the [CFOptions "name"] section, and its
// [TableOptions/BlockBasedTable "name"] section as
// block_based_table_factory={...}.
//
// Each option is tried alone over the defaults first; those that RocksDB
// 7.8.3 refuses, and a merge operator, comparator or compaction filter of
// the writer's own code (which it takes as text but cannot build; one
// built into RocksDB is kept), are left
// out and listed in dropped, for the caller to log. RocksDB 7.8.3 writes a
// Bloom filter as "filter_policy=bloomfilter", without its bits per key:
// the family gets RocksDB's default bits per key. found is false when the file has no section for name (a
// family dropped since).
func FamilyOptions(dbDir, name string) (opts string, dropped []string, found bool, err error) {
	path, err := newestOptionsFile(dbDir)
	if err != nil {
		return "", nil, false, err
	}
	cf, table, found, err := readFamilySections(path, name)
	if err != nil || !found {
		return "", nil, found, err
	}
	var keep []string
	for _, kv := range cf {
		if strings.HasPrefix(kv, "table_factory=") {
			continue // block_based_table_factory below says it
		}
		if optionTakes(kv) && !ofCode(kv) {
			keep = append(keep, kv)
		} else {
			dropped = append(dropped, kv)
		}
	}
	var tkeep []string
	for _, kv := range table {
		if optionTakes("block_based_table_factory={" + kv + "}") {
			tkeep = append(tkeep, kv)
		} else {
			dropped = append(dropped, "block_based_table_factory."+kv)
		}
	}
	if len(tkeep) > 0 {
		keep = append(keep, "block_based_table_factory={"+strings.Join(tkeep, ";")+"}")
	}
	return strings.Join(keep, ";"), dropped, true, nil
}

// ofCode reports an option that names an object of the writer's own code:
// RocksDB 7.8.3 takes its text without an error but cannot build the object
// from a name it does not know, and leaves it unset. A merge operator or
// comparator built into RocksDB (findings.go) is kept.
func ofCode(kv string) bool {
	k, v, _ := strings.Cut(kv, "=")
	switch k {
	case "merge_operator":
		return v != "nullptr" && !builtinMergeOperators[v]
	case "comparator":
		return !builtinComparators[v]
	case "compaction_filter", "compaction_filter_factory":
		return v != "nullptr"
	}
	return false
}

// optionTakes reports whether RocksDB takes kv over its defaults.
func optionTakes(kv string) bool {
	o, err := grocksdb.GetOptionsFromString(nil, kv)
	if err != nil {
		return false
	}
	o.Destroy()
	return true
}

// readFamilySections returns the key=value lines of the family's
// [CFOptions "name"] and [TableOptions/BlockBasedTable "name"] sections.
func readFamilySections(path, name string) (cf, table []string, found bool, err error) {
	cfSection := fmt.Sprintf("CFOptions %q", name)
	tableSection := fmt.Sprintf("TableOptions/BlockBasedTable %q", name)
	err = scanOptionsFile(path, func(section, key, value string) {
		switch {
		case section == cfSection && key == "":
			found = true
		case key == "":
		case section == cfSection:
			cf = append(cf, key+"="+value)
		case section == tableSection:
			table = append(table, key+"="+value)
		}
	})
	if err != nil {
		return nil, nil, false, err
	}
	return cf, table, found, nil
}
