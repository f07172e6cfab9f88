/* vgg16.c: torchvision's VGG16 `features` up to relu5_3 with the five slice outputs (vgg16.h).
 *
 * What it is: the 13 conv + ReLU layers and the 4 max pools between the slices, in eval mode, from tape
 * ops. What it is not: the fifth max pool, the classifier, or any preprocessing.
 * Dimension legend: N batch, C channels, H, W image size; k the slice (0..4).
 */
#include "networks/vgg16.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ops/conv.h"
#include "ops/pool_ext.h"

/* Position of each conv in torchvision's `features` Sequential, and the slice it ends up in. */
static const int conv_index[VGG16_CONVS] = {0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28};
static const int conv_slice[VGG16_CONVS] = {0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4};

void vgg16_build(Vgg16 *m, int width_div) {
    static const int published[VGG16_SLICES] = {64, 128, 256, 512, 512};
    memset(m, 0, sizeof *m);
    I2V_ASSERT(width_div >= 1, "vgg16: width divisor %d", width_div);
    m->width_div = width_div;
    for (int k = 0; k < VGG16_SLICES; k++)
        m->widths[k] = published[k] / width_div > 0 ? published[k] / width_div : 1;
    paramset_init(&m->ps);
    char name[64];
    int cin = 3;
    for (int i = 0; i < VGG16_CONVS; i++) {
        int cout = m->widths[conv_slice[i]];
        snprintf(name, sizeof name, "features.%d.weight", conv_index[i]);
        m->w[i] = buffer_new(&m->ps, name, DT_REAL, 4, DIMS(cout, cin, 3, 3));
        snprintf(name, sizeof name, "features.%d.bias", conv_index[i]);
        m->b[i] = buffer_new(&m->ps, name, DT_REAL, 1, DIMS(cout));
        cin = cout;
    }
    paramset_alloc(&m->ps);
}

void vgg16_free(Vgg16 *m) {
    paramset_free(&m->ps);
    memset(m, 0, sizeof *m);
}

void vgg16_init_random(Vgg16 *m, Rng *r) {
    for (int i = 0; i < VGG16_CONVS; i++) {
        tensor_fill_normal(m->w[i], r, 0, sqrt(2.0 / (double)(m->w[i]->shape[0] * 9)));
        tensor_fill_normal(m->b[i], r, 0, 0.1);
    }
}

/* vgg16.forward (the official slices): conv 3x3 pad 1 + ReLU, a 2x2 max pool at the start of slices 2-5 */
void vgg16_forward(Ctx *c, Vgg16 *m, Tensor *x, Tensor *maps[VGG16_SLICES]) {
    I2V_ASSERT(x->ndim == 4 && x->shape[1] == 3, "vgg16: input must be (N, 3, H, W)");
    Tensor *h = x;
    for (int i = 0; i < VGG16_CONVS; i++) {
        int k = conv_slice[i];
        if (i > 0 && conv_slice[i - 1] != k) h = t_maxpool_nd(c, h, DIMS(1, 2, 2), DIMS(1, 2, 2), DIMS(0, 0, 0), 0);
        h = t_relu(c, t_conv2d(c, h, m->w[i], m->b[i], DIMS(1, 1), DIMS(1, 1)));
        if (i == VGG16_CONVS - 1 || conv_slice[i + 1] != k) maps[k] = h;
    }
}
