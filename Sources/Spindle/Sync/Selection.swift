// Selection: the one atomic claim every branch of a select competes for (Select.swift).
import Synchronization

/// The claim shared by the branches of one `select`: the first branch to claim it is the
/// one that completes; the others are withdrawn.
///
/// States: unclaimed (-1); a branch index (≥ 0), the cancellation (-2) or the timeout
/// (its own index): claimed for good; tentative (-3): the select itself is pairing with
/// another select's waiter, while holding every one of its own channels' locks (so no
/// channel operation can claim it meanwhile). A claim from outside any channel lock
/// (cancellation, the timeout) goes through `request`: it records itself first, so a
/// select that leaves the tentative state without pairing honours it.
@usableFromInline
final class Selection: @unchecked Sendable {
    // SAFETY (@unchecked Sendable): its only state is atomic.
    static let unclaimed = -1
    /// Claimed by cancellation (not by any branch).
    static let cancelled = -2
    static let tentative = -3

    private let winner = Atomic<Int>(Selection.unclaimed)
    /// A claim asked for from outside the channel locks (cancellation or the timeout).
    private let requested = Atomic<Int>(Selection.unclaimed)

    @usableFromInline
    func claim(_ branch: Int) -> Bool {
        winner.compareExchange(expected: Selection.unclaimed, desired: branch, ordering: .sequentiallyConsistent).exchanged
    }

    /// Cancellation or the timeout: claims now, or leaves the claim for the select to
    /// honour when it leaves the tentative state. Returns true if it claimed now.
    func request(_ branch: Int) -> Bool {
        _ = requested.compareExchange(expected: Selection.unclaimed, desired: branch, ordering: .sequentiallyConsistent)
        return claim(branch)
    }

    /// The select's own: enter the tentative state (false: already claimed).
    func beginPairing() -> Bool {
        winner.compareExchange(expected: Selection.unclaimed, desired: Selection.tentative, ordering: .sequentiallyConsistent).exchanged
    }

    /// Pairing succeeded as `branch`.
    func commitPairing(_ branch: Int) {
        winner.store(branch, ordering: .sequentiallyConsistent)
    }

    /// Pairing failed: back to unclaimed, then honour a request that came meanwhile.
    /// Returns true if the selection is claimed now (by that request).
    func abandonPairing() -> Bool {
        winner.store(Selection.unclaimed, ordering: .sequentiallyConsistent)
        let r = requested.load(ordering: .sequentiallyConsistent)
        return r != Selection.unclaimed && (claim(r) || claimedBranch != nil)
    }

    var claimedBranch: Int? {
        let w = winner.load(ordering: .sequentiallyConsistent)
        return w == Selection.unclaimed || w == Selection.tentative ? nil : w
    }
}
