module github.com/rockstream/rockstream

go 1.26.8

require (
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/linxGnu/grocksdb v1.7.15 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
