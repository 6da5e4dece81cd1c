/*
 * FastCDC with normalised chunking (level 2); see chunker.h for the contract.
 *
 * The rolling hash is the gear hash: fp = (fp << 1) + gear[byte]. Bit k of
 * fp depends on the last k + 1 bytes only, so the masks test the TOP bits
 * (a b-bit mask at bits 63..64-b looks at a window of up to 64 bytes).
 * Normalised chunking: between min and avg the mask has b + 2 bits (a cut is
 * 4x less likely than 1/avg), after avg it has b - 2 bits (4x more likely),
 * which pulls chunk sizes towards avg. Like the paper, hashing starts at
 * `min` (cut-point skipping): bytes before it cannot end a chunk.
 *
 * Cost: one table load, shift and add per byte, about 1 GB/s per core;
 * the ingest pipeline chunks on the reader thread while workers hash and
 * compress, so this is not the bottleneck.
 *
 * The gear table is fixed forever (see chunker.h): it is the first 256
 * outputs of SplitMix64 (Steele et al.; state += 0x9e3779b97f4a7c15, then
 * z ^= z >> 30, z *= 0xbf58476d1ce4e5b9, z ^= z >> 27,
 * z *= 0x94d049bb133111eb, z ^= z >> 31) seeded with 0x636169726e636463
 * ("cairncdc"). tests/unit/store/test_chunker.c regenerates it and compares.
 */
#include <stddef.h>
#include <stdint.h>

#include "store/chunker.h"

const uint64_t cairn__cdc_gear[256] = {
    0x6403f467f085d64bULL, 0xf40e077fcba7fe61ULL, 0xdea32663d1d192f3ULL, 0x99b86e7f9105fbd5ULL,
    0xe5d56ac6e80297a6ULL, 0x8d6cba76ad0e3848ULL, 0xf0ba7a1d73522a4eULL, 0x470422c7e16bee0aULL,
    0x01c082d75434c2c4ULL, 0xe8ba2e23c9006319ULL, 0x4437ec5e66e6f00bULL, 0xd4c424fda9c3d9f2ULL,
    0x33def9a6db19cac1ULL, 0x0786c5bb83119009ULL, 0x8e82acbb0f7a033bULL, 0x364319a9cacdd84dULL,
    0x5bdc0fd80df32cc8ULL, 0x02ab804369cc67e6ULL, 0xe0223d18ef1cdb4eULL, 0x50227e41c2c89de0ULL,
    0x46ec999ad93c7dddULL, 0x6fab732e3d9b5574ULL, 0xa072eef422ea5fefULL, 0x2fd04165bb2ff5a8ULL,
    0x35379a3187aca913ULL, 0xb7d63e01bae43157ULL, 0x88881d73019b0e98ULL, 0xa8ee512f1777b279ULL,
    0x6419d77f0c3d8f6bULL, 0x4589f46f2aa66c15ULL, 0xfe5d851427c63599ULL, 0xad27ae75485a5a09ULL,
    0xdf08bc27ddddf759ULL, 0x029d0de48bff673fULL, 0x8a6a465db8e06a11ULL, 0x27c8799da4ccc68aULL,
    0xdf1533083066bcc6ULL, 0x18de4c5e4540721dULL, 0x64bf43bfaf2c9392ULL, 0x02a6e65926f804e9ULL,
    0xe8fe05415b6f64bcULL, 0xb3ed5412546f48f2ULL, 0x19842b0afa481fcbULL, 0xa9642ba089dba7f0ULL,
    0x617dce068c24fbc6ULL, 0x8a80699df567a112ULL, 0x655fd65552a2f942ULL, 0xb7c193664af25d97ULL,
    0x79be3672469f0d1fULL, 0xea4bddff23a357c0ULL, 0x26c31eaa90f1e673ULL, 0x7e36da17516ddec5ULL,
    0xbf7a331abfc794ccULL, 0x5bd8edf47cd44b8fULL, 0xb79065f325e2f8e3ULL, 0x868b3c2064f33513ULL,
    0x48e2b256de8826f6ULL, 0xb31173db1b4594d7ULL, 0xb7cbd78f1aa185dcULL, 0xb68d59fd40c7f4d5ULL,
    0x18c1cc8a1f83e1f1ULL, 0xdb4f409874f21c0cULL, 0x4ded2fb3003977e9ULL, 0x5496d178ea8f5410ULL,
    0xf64656955b644b71ULL, 0xa2d434111bd5d804ULL, 0x049575fbb602b766ULL, 0x12a0bbf454a7f138ULL,
    0xd70ca911380bef5eULL, 0x6db5e2d155786b38ULL, 0x0110da17bca72abcULL, 0x9539eff3309f84a5ULL,
    0x4ced31e049064720ULL, 0xc7ea1fd4e839def8ULL, 0x53f0550b6234af84ULL, 0x52d4768dc8b46e78ULL,
    0x73075628c48e746bULL, 0x4224525635f8b9dbULL, 0x8e466af25e98fcb4ULL, 0xef85241610e34059ULL,
    0x03b7b4c7856f4775ULL, 0xbd02a87d7ceca51bULL, 0x2a8e48de344d2f36ULL, 0x6007e2c39135808aULL,
    0x28c83761cd52f4faULL, 0xbee5258b900da6a9ULL, 0xcaf93644e3bee2aeULL, 0x6c58d1f0c12b2891ULL,
    0x09c7a9ed2e748c10ULL, 0x461d0ae52263006bULL, 0xc7da6755c767e9e8ULL, 0x7f7eac3c1f3183faULL,
    0xda401ec2fd0e95f6ULL, 0x9ea6f051b1fa2c28ULL, 0xd4d553e3f03ef7aeULL, 0xdb906ed895e3e589ULL,
    0x55d61c4fd1cd588cULL, 0x51b251d74bd7fc3dULL, 0xc870d3eaf6085c97ULL, 0x09daa2071fbeaaedULL,
    0x7b4dae595a356403ULL, 0x05aa93b038f1cdf2ULL, 0xc2aaaae19e8af41bULL, 0x66dea661d871f029ULL,
    0xa14b815888da058cULL, 0x78ea9e1fab89db0eULL, 0x8cf40eacd2172b82ULL, 0x38fe958fe30bb2feULL,
    0xd4981b1074f8af5cULL, 0x31c987ca0a7dbb84ULL, 0x16ed92cabaeab284ULL, 0xea525bd1bbaef3f8ULL,
    0x2edd8632281f22beULL, 0xdf27e15a22eda555ULL, 0x855efe755a9fb478ULL, 0x9bb67aaf846bf085ULL,
    0xd911c2bb922e80beULL, 0xa228b4ea04147cebULL, 0x6e1e0697e99870dbULL, 0xe262f42db66e6373ULL,
    0x00ea3853514646fcULL, 0xaea0f8ff1daf552dULL, 0x0742a3d4d405e052ULL, 0x8443828d9d88a3aaULL,
    0x87ff385d61999975ULL, 0x5b6cf5c61e763015ULL, 0x31e960f566f8f33aULL, 0x61667a759e170bcfULL,
    0xea66936effa82c5cULL, 0x122a3cf111b82689ULL, 0x209098354e6670abULL, 0xa7359e9379f10434ULL,
    0xd3de6b028eeb5494ULL, 0xccd7c0b88dd6d489ULL, 0x428da788abf145ceULL, 0x4e6e30c214fafcc1ULL,
    0xc570d1fa4a3eb546ULL, 0x5845a2dce2219900ULL, 0x688e0083e2f6258dULL, 0xed57b4c90dcdee0bULL,
    0x807cb130d82214dcULL, 0xecbbb1672fe222f6ULL, 0xc6d31f6ac44edf17ULL, 0x702e7fe8f0db3476ULL,
    0x8afd5792388767e6ULL, 0x707aa5ff46f6c05eULL, 0xad31d65e6a6abf1bULL, 0xf2c55a4061c5fbbdULL,
    0x1b22719739a836d2ULL, 0xbe581699949ac647ULL, 0x10f0182c14f24024ULL, 0xff8cbed83a987643ULL,
    0x8df4e18d244db72cULL, 0xa8dfab84d7621a37ULL, 0x2a4d92ca4e0fc580ULL, 0x70deb4c59f7d27d6ULL,
    0x1bb4a86593af26ceULL, 0x41f8bb5d5f73d2f7ULL, 0x35f124d936d51005ULL, 0x380e2624c8db86bbULL,
    0x3aace29d8d4d195eULL, 0xf624c49b534b6d4dULL, 0x23f6b8eafe4f6e7aULL, 0x04749c505df04bb4ULL,
    0xdd7864e9edffcd1eULL, 0xc36d9537b751d03dULL, 0x3863d53af8206802ULL, 0x5f649482eba64b47ULL,
    0x4ce49913603ce289ULL, 0x0c63631992e6795bULL, 0x333ba035109d6da5ULL, 0x794adc6f5973f734ULL,
    0x47bb5c1426159388ULL, 0x4604261ae22338ceULL, 0xb48cc363851518b6ULL, 0xb9e5dcf91e7d12a1ULL,
    0xc58b4633fef7cbb9ULL, 0x9634b42c12ed4e4dULL, 0x8a53fca48bfb9888ULL, 0xb257ab01c50dc5b5ULL,
    0x84a38699f7669c24ULL, 0x6895e1b354725c8fULL, 0xecf1f78c9bfe7e40ULL, 0x4fd1756e4c5d2d35ULL,
    0xef7de6b717f45645ULL, 0x3df21c9ccc7ad475ULL, 0xc34e4215c6f43f38ULL, 0x2a12f0c3ec933b70ULL,
    0x0998a0765a61f4adULL, 0xea22e372cb363e52ULL, 0x1a301e30eecb9d30ULL, 0xacd405ee7a5dff7bULL,
    0xcd1e9ac71fa4fee5ULL, 0xeafa4e327e6263c0ULL, 0xa6a76bdedf1f07a5ULL, 0x5f5ddf64bd85c33eULL,
    0x1a571e9ed2069ad0ULL, 0xfb2e0b8984ee3173ULL, 0x2b76bc2861ebdd1fULL, 0xdcef7da495c770f5ULL,
    0x76e43b01c882dfc6ULL, 0xe23f58c6419d077dULL, 0xcd9b9b297cde4d6bULL, 0x341ca32e9c798336ULL,
    0x7ec4aed510a91ceeULL, 0xe20a78dc1a815920ULL, 0xf28d75df16793cfbULL, 0xf33eb3afc5999f3aULL,
    0xc10516c9b666b011ULL, 0xf28ad949e282946fULL, 0xece168a67ea0d4f7ULL, 0x438833e59fd863efULL,
    0x01e2caee7341ceb9ULL, 0x46f1a8996f71570bULL, 0xe4e69aa24cf3ac31ULL, 0x53721691b81b0107ULL,
    0x6dd045573f061a20ULL, 0xfc085ec2979242d8ULL, 0xff3a2669e2c6610fULL, 0x3eafa7a1ea65502cULL,
    0x08ec6d82eab223c6ULL, 0x31b842e6a5343562ULL, 0x60009c49d0fece71ULL, 0x458f043b4f2318a4ULL,
    0x1771cfae3f9d181cULL, 0xe03cb76b3391a6a7ULL, 0x0190de9fc5e2e897ULL, 0xc9d48de1c96c6779ULL,
    0xa3a257a74f99ad80ULL, 0xf72bd6ca43a109adULL, 0xda5c6e9135d8887fULL, 0x9b26c81f9b132499ULL,
    0x497a0d10257b1181ULL, 0x55a3b50cc1532839ULL, 0x9927390e6a2d11efULL, 0x065635a58c3b83a0ULL,
    0xb0c6c7b577d87099ULL, 0x18c2b07be9e99e3bULL, 0x709e4e8a984fa786ULL, 0xc48d07fd58ddc66fULL,
    0x3a6392083c88b565ULL, 0xf29779b48ee625d2ULL, 0xf0bb7ecda9a4b4e0ULL, 0x4d055411dbd0bde8ULL,
    0x6df4627ff86b5366ULL, 0xc317434df984d94cULL, 0xe2f75d8af83967d7ULL, 0xcc45aa84d6f18bfdULL,
    0xf2c081da38e8accdULL, 0xde8c9a1da67d4449ULL, 0xf52b3334515932b7ULL, 0x54d4343d0bf2fbb5ULL,
    0xe1d4ec2bebda445cULL, 0xa2e4264e7584a66cULL, 0x859b53f782bc4e9eULL, 0x910b65dfe564fdf7ULL,
};

static unsigned floor_log2(size_t v)
{
    unsigned b = 0;
    while (v >>= 1)
        b++;
    return b;
}

/* `bits` ones at the top of a 64-bit word. */
static uint64_t top_mask(unsigned bits)
{
    if (bits == 0)
        return 0;
    if (bits >= 64)
        return ~(uint64_t)0;
    return ~(uint64_t)0 << (64 - bits);
}

void cairn_cdc_init(struct cairn_cdc *c, size_t min, size_t avg, size_t max)
{
    unsigned b;

    if (!avg)
        avg = CAIRN_CDC_AVG_DEFAULT;
    if (!min)
        min = avg == CAIRN_CDC_AVG_DEFAULT ? CAIRN_CDC_MIN_DEFAULT : avg / 4;
    if (!max)
        max = avg == CAIRN_CDC_AVG_DEFAULT ? CAIRN_CDC_MAX_DEFAULT : avg * 4;
    if (avg < 64)
        avg = 64;
    b = floor_log2(avg);
    avg = (size_t)1 << b;
    if (min < 64)
        min = 64;
    if (min > avg)
        min = avg;
    if (max < avg)
        max = avg;
    c->min = min;
    c->avg = avg;
    c->max = max;
    c->mask_s = top_mask(b + 2);
    c->mask_l = top_mask(b > 2 ? b - 2 : 1);
}

size_t cairn_cdc_next(const struct cairn_cdc *c, const uint8_t *data, size_t len, int eof)
{
    size_t n, normal, i;
    uint64_t fp = 0;

    if (len == 0)
        return 0;
    if (len <= c->min)
        return eof ? len : 0;
    n = len < c->max ? len : c->max;
    normal = c->avg < n ? c->avg : n;
    for (i = c->min; i < normal; i++) {
        fp = (fp << 1) + cairn__cdc_gear[data[i]];
        if (!(fp & c->mask_s))
            return i + 1;
    }
    for (; i < n; i++) {
        fp = (fp << 1) + cairn__cdc_gear[data[i]];
        if (!(fp & c->mask_l))
            return i + 1;
    }
    if (n == c->max || eof)
        return n;
    return 0;
}
