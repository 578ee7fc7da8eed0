"""Independent reference for passlab's portable RNG (tests/core/test_rng.cpp golden values).

SplitMix64 (Steele, Lea, Flood 2014) seeds xoshiro256** (Blackman, Vigna 2018); bounded integers
use Lemire's multiply-and-reject; permutations are Fisher-Yates from the last index down.
Run: python3 scripts/golden/rng_golden.py
"""
M = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    return state, z ^ (z >> 31)


def rotl(x, k):
    return ((x << k) | (x >> (64 - k))) & M


class Xoshiro:
    def __init__(self, seed):
        self.s = []
        st = seed
        for _ in range(4):
            st, v = splitmix64(st)
            self.s.append(v)

    def next(self):
        s = self.s
        result = (rotl((s[1] * 5) & M, 7) * 9) & M
        t = (s[1] << 17) & M
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def below(self, bound):
        m = self.next() * bound
        low = m & M
        if low < bound:
            threshold = ((1 << 64) - bound) % bound
            while low < threshold:
                m = self.next() * bound
                low = m & M
        return m >> 64


def permutation(n, seed):
    p = list(range(n))
    r = Xoshiro(seed)
    for i in range(n - 1, 0, -1):
        j = r.below(i + 1)
        p[i], p[j] = p[j], p[i]
    return p


def derive(seed, stream):
    _, a = splitmix64(seed)
    s = a ^ ((stream * 0xD1342543DE82EF95 + 0x2545F4914F6CDD1D) & M)
    _, out = splitmix64(s)
    return out


if __name__ == "__main__":
    st = 1234567
    outs = []
    for _ in range(3):
        st, v = splitmix64(st)
        outs.append(v)
    print("splitmix64(1234567):", outs)
    r = Xoshiro(42)
    print("xoshiro(42) next x4:", [r.next() for _ in range(4)])
    r = Xoshiro(7)
    print("xoshiro(7) below(10) x8:", [r.below(10) for _ in range(8)])
    r = Xoshiro(7)
    print("xoshiro(7) uniform01 x2:", [(r.next() >> 11) * 2.0**-53 for _ in range(2)])
    print("permutation(10, 2024):", permutation(10, 2024))
    print("derive(5, 3):", derive(5, 3), " derive(derive(5,3),9):", derive(derive(5, 3), 9))
