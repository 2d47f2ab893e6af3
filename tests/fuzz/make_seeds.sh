#!/bin/bash
# tests/fuzz/make_seeds.sh BUILD_DIR: (re)writes the checked-in seed corpus
# of the fuzz targets, tests/fuzz/corpus/<target>/. Each text seed is a
# client's byte stream (printf %b escapes: \r \n \0 \xHH); the dump seeds
# come from the project's own writer through BUILD_DIR/tests/fuzz/
# gen_dump_seeds (a build with -DTC_FUZZ=ON). Files are overwritten, not
# removed: corpus/fuzz_dumpfile/from_tiercached.tcd is a tiercache-dump of
# a running tiercached (3 items, one with a binary value), kept as it is.
# Only needed when the seeds change; the fuzzers grow their own working
# copy in the build dir.
set -eu
build=$(cd "${1:?usage: make_seeds.sh BUILD_DIR}" && pwd)
cd "$(dirname "$0")"
mkdir -p corpus/fuzz_parse corpus/fuzz_meta corpus/fuzz_dumpfile

p() { printf '%b' "$2" >"corpus/fuzz_parse/$1"; }
m() { printf '%b' "$2" >"corpus/fuzz_meta/$1"; }
long() { head -c "$1" /dev/zero | tr '\0' "$2"; }

# --- classic commands, each kind, with data, noreply, multi-gets ----------------
p get 'get foo\r\n'
p get_multi 'get a bb ccc dddd eeeee\r\n'
p gets 'gets foo bar\r\n'
p gat 'gat 100 foo bar\r\n'
p gats 'gats -1 foo\r\n'
p gat_bad_exptime 'gat x foo\r\n'
p bget 'bget foo\r\n'
p get_spaces '  get   foo  bar   \r\n'
p get_24_tokens "get $(seq -s ' ' 1 30)\r\n"
p get_long_key "get $(long 251 k)\r\n"
p get_no_newline "get $(seq -s ' ' 1 600)"
p set 'set foo 0 0 3\r\nbar\r\n'
p set_noreply 'set foo 5 100 3 noreply\r\nbar\r\n'
p set_empty 'set foo 4294967295 -1 0\r\n\r\n'
p set_bad_chunk 'set foo 0 0 3\r\nbarx\r\nget foo\r\n'
p set_neg_len 'set foo 0 0 -1\r\n'
p set_bad_flags 'set foo -1 0 3\r\nbar\r\n'
p set_key_251 "set $(long 251 k) 0 0 1\r\nx\r\n"
p set_too_many 'set foo 0 0 3 noreply x\r\nbar\r\n'
p add 'add foo 1 0 3\r\nbar\r\n'
p replace 'replace foo 1 0 3 noreply\r\nbar\r\n'
p append 'append foo 0 0 2\r\nxy\r\n'
p prepend 'prepend foo 0 0 2 noreply\r\nxy\r\n'
p cas 'cas foo 0 0 3 12345\r\nbar\r\n'
p cas_noreply 'cas foo 0 0 3 18446744073709551615 noreply\r\nbar\r\n'
p cas_missing 'cas foo 0 0 3\r\nbar\r\n'
p delete 'delete foo\r\ndelete foo 0\r\ndelete foo noreply\r\ndelete foo 0 noreply\r\n'
p delete_bad 'delete foo 5\r\ndelete\r\n'
p incr 'incr foo 1\r\nincr foo 18446744073709551615\r\n'
p decr 'decr foo 5 noreply\r\ndecr foo x\r\n'
p touch 'touch foo 100\r\ntouch foo 100 noreply\r\ntouch foo x\r\n'
p touch_long_key "touch $(long 251 k) 10\r\n"
p flush_all 'flush_all\r\nflush_all 10\r\nflush_all noreply\r\nflush_all 10 noreply\r\nflush_all x\r\n'
p version 'version\r\n'
p quit 'quit\r\n'
p verbosity 'verbosity 1\r\nverbosity 1 noreply\r\nverbosity\r\n'
p shutdown 'shutdown\r\nshutdown graceful\r\nshutdown now\r\n'
p stats 'stats\r\nstats reset\r\nstats settings\r\nstats items\r\nstats slabs\r\nstats sizes\r\nstats conns\r\nstats tiers\r\nstats nope\r\n'
p stats_detail 'stats detail on\r\nstats detail off\r\nstats detail dump\r\nstats detail\r\nstats detail x\r\n'
p mn 'mn\r\nmg foo v\r\n'
p http 'GET / HTTP/1.1\r\nHost: x\r\n\r\n'
p lru_metadump 'lru_crawler metadump all\r\nlru_crawler metadump hash\r\nlru_crawler metadump 1,2,63\r\n'
p lru_crawl 'lru_crawler crawl all\r\nlru_crawler crawl 1,,5\r\nlru_crawler crawl ,,\r\nlru_crawler crawl hash\r\n'
p lru_bad 'lru_crawler metadump 64\r\nlru_crawler crawl 0\r\nlru_crawler metadump x\r\nlru_crawler\r\nlru_crawler nope\r\n'
p lru_other 'lru_crawler sleep 100\r\nlru_crawler sleep 1000001\r\nlru_crawler tocrawl 10\r\nlru_crawler tocrawl x\r\nlru_crawler enable\r\nlru_crawler disable\r\n'
p empty_lines '\n\r\n\r\r\n \r\n'
p nul_in_line 'get foo\0bar\r\nset a\0 0 0 1\r\nx\r\n'
p bare_lf 'get foo\nset foo 0 0 1\nx\r\n'
p line_too_long "$(long 2100 x)"
p pipeline 'set a 0 0 1\r\n1\r\nget a\r\nincr a 5\r\ngets a b\r\ndelete a\r\nversion\r\n'

# --- meta commands: every flag, every mode, the errors of docs/META.md ---------------
m mg_all_flags 'mg foo b c f h k l O123 q s t u v N30 R30 T30\r\n'
m mg_plain 'mg foo v\r\nmg foo\r\n'
m mg_base64 'mg Zm9v b k v\r\n'
m mg_accepted 'mg foo C1 D1 F1 I J1 L M1 P\r\n'
m ms 'ms foo 3 T30 F5 c k O1 q\r\nbar\r\n'
m ms_modes 'ms foo 1 ME\r\na\r\nms foo 1 MA\r\na\r\nms foo 1 MP\r\na\r\nms foo 1 MR\r\na\r\nms foo 1 MS\r\na\r\n'
m ms_cas 'ms foo 3 C12345 I b\r\nbar\r\n'
m ms_base64 'ms Zm9vYg== 3 b k\r\nbar\r\n'
m md 'md foo b C1 I k O1 q T30\r\nmd foo\r\n'
m ma 'ma foo b c C1 D5 J10 k MI N30 O1 q t T30 v\r\n'
m ma_modes 'ma foo M+\r\nma foo MD\r\nma foo M-\r\nma foo MI\r\n'
m mn 'mn\r\nmn anything\r\n'
m me 'me foo\r\nme Zm9v b\r\n'
m err_no_key 'mg\r\nms\r\nmd \r\nma\r\n'
m err_key_long "mg $(long 251 k) v\r\n"
m err_ms_no_len 'ms foo\r\n'
m err_ms_bad_len 'ms foo x\r\nab\r\nms foo -1\r\nms foo 2147483646\r\n'
m err_mg_too_long 'mg foo a b c d e f g h i j k l m n o p q r\r\n'
m err_ms_too_long 'ms foo 1 a b c d e f g h i j k l m n o p q\r\na\r\n'
m err_invalid_flag 'mg foo E\r\nms foo 1 S\r\na\r\nmg foo x\r\n'
m err_duplicate 'mg foo v v\r\nms foo 1 T1 T2\r\na\r\nmg foo \x80\r\n'
m err_md_ma_flag 'md foo Q\r\nma foo v v\r\n'
m err_bad_token 'mg foo Tx\r\nmg foo N\r\nmg foo R1x\r\nmd foo C-\r\n'
m err_ms_swallow 'ms foo 2 Tx\r\nab\r\n'
m err_bad_delta 'ma foo Dx\r\nmg foo Tx Dx\r\n'
m err_bad_initial 'ma foo Jx\r\n'
m err_bad_f 'mg foo Fx\r\nmg foo Tx Fx\r\n'
m err_m_length 'ms foo 1 MEE\r\na\r\nma foo M\r\n'
m err_key_decode 'mg Zm9 b\r\nms ==== 1 b\r\na\r\nmg A=== b\r\n'
m err_ms_mode 'ms foo 1 Mx\r\na\r\nms foo 1 Me\r\na\r\n'
m err_ma_mode 'ma foo Mx\r\n'
m err_opaque "mg foo O$(long 31 o)\r\nmg foo O$(long 32 o)\r\n"
m err_me 'me\r\nme Zm9 b\r\n'
m binary_keys 'mg AAECAwQF b k\r\nmg /+/+ b\r\nmg Z m 9 v b\r\n'
m nul_tab 'mg foo\0 v\r\nmg f\too v\r\n'
m pipeline 'ms a 1 T0\r\n1\r\nmg a v c f\r\nma a D4 v\r\nmd a q\r\nmn\r\n'
m classic_mix 'get foo\r\nset foo 0 0 1\r\nx\r\nmg foo v\r\n'

"$build/tests/fuzz/gen_dump_seeds" corpus/fuzz_dumpfile
echo "seeds: $(ls corpus/fuzz_parse | wc -l) parse, $(ls corpus/fuzz_meta | wc -l) meta, $(ls corpus/fuzz_dumpfile | wc -l) dumpfile"
