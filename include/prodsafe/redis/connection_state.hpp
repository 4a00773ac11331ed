// Which commands change the state of the connection they run on.
//
// A pooled connection is shared by every caller of a Client, one after the
// other, so it must be handed back in the state it was opened in: RESP2, the
// URL's database and user, not in a transaction, not subscribed, one reply per
// command. Client::command() refuses the commands below and Client::pipeline()
// refuses a pipeline that leaves one of them in effect; a connection of one's
// own (Client::dedicated_connection()) runs any of them.
//
// The commands, and why each one cannot run alone on a pooled connection:
//   MULTI                 later commands are queued (QUEUED) until EXEC or
//                         DISCARD: another caller's writes would vanish.
//   EXEC, DISCARD         end a MULTI (and forget every WATCH); alone they only
//                         make sense after MULTI, so they share its rule.
//   WATCH                 the next EXEC on the connection, whoever sends it,
//                         fails when a watched key changes.
//   SELECT                every later command acts on another database.
//   SUBSCRIBE, PSUBSCRIBE, SSUBSCRIBE
//                         the connection turns into a pub/sub one that refuses
//                         ordinary commands.
//   UNSUBSCRIBE, PUNSUBSCRIBE, SUNSUBSCRIBE
//                         answer once per channel, even outside pub/sub: one
//                         command, several replies, the next caller reads them.
//   CLIENT REPLY          OFF and SKIP suppress replies, so the next caller
//                         reads nothing or another command's reply (ON is
//                         refused too: it is only ever needed after OFF).
//   CLIENT TRACKING, CLIENT CACHING
//                         client-side caching: invalidation messages and
//                         per-connection tracking state.
//   CLIENT NO-TOUCH       later commands stop updating keys' access times.
//   RESET                 back to database 0, the default user and RESP2:
//                         undoes the URL's database and user.
//   HELLO                 switches the protocol (HELLO 3 gives RESP3, which the
//                         parser cannot read) and can authenticate.
//   AUTH                  later commands run as another user.
//   MONITOR               the connection receives every command the server
//                         runs, interleaved with its own replies.
//   READONLY, READWRITE, ASKING
//                         cluster routing modes of the connection (ASKING for
//                         the next command, whoever sends it).
//   QUIT                  the server closes the connection.
//   SYNC, PSYNC, REPLCONF the connection becomes a replica's replication
//                         stream.
// UNWATCH only returns a connection to its normal state; it runs anywhere.
// Commands that change the server rather than the connection (SWAPDB, MOVE,
// CONFIG SET, CLIENT KILL, CLIENT SETNAME) are not listed here.
//
// Thread safety: the functions are pure.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace prodsafe::redis {

// What a command does to the state of the connection it runs on.
enum class StateChange : std::uint8_t {
  kNone,      // leaves the connection as it was (almost every command)
  kMulti,     // MULTI: starts a transaction
  kEndMulti,  // EXEC, DISCARD: ends a transaction and forgets every WATCH
  kWatch,     // WATCH: watches keys until EXEC, DISCARD or UNWATCH
  kUnwatch,   // UNWATCH: forgets every WATCH
  kLasting,   // changes the connection for every later command (SELECT, ...)
};

struct CommandState {
  StateChange change = StateChange::kNone;
  // The command as Redis documents it ("MULTI", "CLIENT REPLY"); empty for
  // kNone.
  std::string_view name;
  // What to do instead on a pooled connection; empty for kNone and kUnwatch.
  std::string_view advice;
};

// Classifies the command `args` (its name and arguments), matching names
// case-insensitively; two-word commands (CLIENT REPLY) match on both words.
// Allocates nothing: a switch on the name's length, then a character compare
// against at most three names.
[[nodiscard]] CommandState classify_command(std::span<const std::string_view> args) noexcept;

}  // namespace prodsafe::redis
