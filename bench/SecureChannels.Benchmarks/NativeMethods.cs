using System.Runtime.InteropServices;

namespace SecureChannels.Benchmarks;

/// <summary>
/// The bare libsodium functions the baselines need beyond src's own <c>Libsodium</c> (which the X25519 baselines call):
/// its random generator and Ed25519 verification, without NSec's key objects (sodium_malloc's guarded memory per
/// object). The library is the one NSec loads, from the libsodium package.
/// </summary>
internal static class NativeMethods
{
    private const string Libsodium = "libsodium";

    /// <summary>Idempotent; picks the CPU-specific implementations. Returns 0, or 1 when already done.</summary>
    [DllImport(Libsodium, EntryPoint = "sodium_init")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories)]
    internal static extern int SodiumInit();

    /// <summary>Fills <paramref name="buffer"/> with <paramref name="size"/> random bytes (libsodium's generator, as NSec's key creation uses).</summary>
    [DllImport(Libsodium, EntryPoint = "randombytes_buf")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories)]
    internal static extern void RandomBytes(byte[] buffer, nuint size);

    /// <summary>Ed25519 verification of a detached 64-byte signature; returns 0 when it holds, -1 otherwise.</summary>
    [DllImport(Libsodium, EntryPoint = "crypto_sign_ed25519_verify_detached")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories)]
    internal static extern int Ed25519VerifyDetached(byte[] signature, byte[] message, ulong messageLength, byte[] publicKey);
}
