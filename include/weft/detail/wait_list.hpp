// WaitList: an intrusive FIFO of WaitNodes, the wait list of one blocking
// object (a channel's senders or receivers, a mutex's, a condition
// variable's, a wait group's, a semaphore's waiters).
//
// A node lives on the waiting fiber's or thread's stack and points at its
// Waiter (lib/sync/waiter.hpp). Queuing never allocates. A node is on at most one
// list; `linked` says whether it still is, so that both the party that wakes
// it (pop_front) and its owner after waking (remove) may take it off, in
// either order, without a double unlink.
//
// Contract: not thread-safe; every call is made under the lock of the object
// that owns the list. Nothing here parks or blocks.
#pragma once

#include "config.hpp"

namespace weft::detail {

class Waiter;

struct WaitNode {
  Waiter* waiter = nullptr;
  WaitNode* prev = nullptr;
  WaitNode* next = nullptr;
  bool linked = false;
};

class WaitList {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  WaitNode* front() const noexcept { return head_; }

  void push_back(WaitNode* n) noexcept {
    n->prev = tail_;
    n->next = nullptr;
    if (tail_ != nullptr) tail_->next = n; else head_ = n;
    tail_ = n;
    n->linked = true;
  }

  // Puts n first (a waiter that already waited its turn, re-queued).
  void push_front(WaitNode* n) noexcept {
    n->prev = nullptr;
    n->next = head_;
    if (head_ != nullptr) head_->prev = n; else tail_ = n;
    head_ = n;
    n->linked = true;
  }

  // The oldest node, unlinked, or nullptr.
  WaitNode* pop_front() noexcept {
    WaitNode* n = head_;
    if (n != nullptr) remove(n);
    return n;
  }

  // Unlinks n if it is still linked (on this list).
  void remove(WaitNode* n) noexcept {
    if (!n->linked) return;
    if (n->prev != nullptr) n->prev->next = n->next; else head_ = n->next;
    if (n->next != nullptr) n->next->prev = n->prev; else tail_ = n->prev;
    n->prev = n->next = nullptr;
    n->linked = false;
  }

  // Calls fn(WaitNode*) for every node, oldest first (diagnostics).
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (WaitNode* n = head_; n != nullptr; n = n->next) fn(n);
  }

 private:
  WaitNode* head_ = nullptr;
  WaitNode* tail_ = nullptr;
};

}  // namespace weft::detail
